//! Topic-exchange routing: a trie of binding patterns matched against routing keys the way
//! RabbitMQ 3.x does (`rabbit_exchange_type_topic` / `rabbit_db_topic_exchange`).
//!
//! This module owns only the pattern trie and the matching algorithm. It knows nothing about
//! exchanges, queues, vhosts, persistence or locking: a destination is an opaque `D`, and the
//! caller decides what a binding's identity is beyond `(pattern, dest)` (for instance binding
//! arguments) by choosing `D`. It must not do I/O or depend on broker types.
//!
//! Semantics, mirrored from RabbitMQ's `split_topic_key/1` and `trie_match/5`:
//! * A key is split on every `.`; empty words are words (`a..b` is `a`, `""`, `b`), **except**
//!   that the empty key `""` is *zero* words, not one empty word. So `""` is matched by the
//!   patterns `""`, `#`, `#.#`, … but not by `*`, and `"."` is two empty words.
//! * In patterns, a word that is exactly `*` matches exactly one word and a word that is exactly
//!   `#` matches zero or more words; any other word (including `a*` or `#a`) is literal.
//! * Routing keys are not interpreted: a `*` or `#` in a routing key is an ordinary word.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

/// Index of a node in the arena. Node 0 is the root and is never freed.
type NodeId = usize;
const ROOT: NodeId = 0;

struct Node<D> {
    /// Children reached by a literal word (never `*` or `#`, which have dedicated slots).
    literal: HashMap<Box<str>, NodeId, ahash::RandomState>,
    star: Option<NodeId>,
    hash: Option<NodeId>,
    /// Destinations bound with the pattern that ends at this node.
    dests: HashSet<D>,
}

impl<D> Node<D> {
    fn new() -> Self {
        Node {
            literal: HashMap::default(),
            star: None,
            hash: None,
            dests: HashSet::new(),
        }
    }

    fn is_unused(&self) -> bool {
        self.literal.is_empty()
            && self.star.is_none()
            && self.hash.is_none()
            && self.dests.is_empty()
    }
}

/// Which edge of a node a pattern word follows.
#[derive(Clone, Copy)]
enum Edge<'a> {
    Literal(&'a str),
    Star,
    Hash,
}

impl<'a> Edge<'a> {
    fn of(word: &'a str) -> Self {
        match word {
            "*" => Edge::Star,
            "#" => Edge::Hash,
            w => Edge::Literal(w),
        }
    }
}

/// A unit of matching work: either "match words[pos..] from node" or "node is reached through a
/// `#` edge and may swallow any number of words starting at pos".
#[derive(Clone, Copy)]
enum Step {
    Match {
        node: NodeId,
        pos: usize,
        after_hash: bool,
    },
    Skip {
        node: NodeId,
        pos: usize,
    },
}

/// Splits a key into words exactly like RabbitMQ's `split_topic_key/1`: `""` is zero words,
/// otherwise every `.` separates words and empty words are kept.
fn split_words(key: &str) -> Vec<&str> {
    if key.is_empty() {
        Vec::new()
    } else {
        key.split('.').collect()
    }
}

/// Topic-exchange bindings: a trie over dot-separated words, matching `*` (exactly one word) and
/// `#` (zero or more words) as RabbitMQ does.
///
/// Nodes live in an arena (`Vec`) rather than in nested boxes so that matching can be done with
/// an explicit work stack (no recursion, so no stack overflow on very long patterns) and so that
/// `(node, position)` states can be memoised cheaply by index.
pub struct TopicBindings<D> {
    nodes: Vec<Node<D>>,
    /// Arena slots freed by pruning, reused by later binds.
    free: Vec<NodeId>,
    /// Number of distinct `(pattern, dest)` bindings.
    bindings: usize,
}

impl<D: Clone + Eq + Hash> Default for TopicBindings<D> {
    fn default() -> Self {
        Self::new()
    }
}

impl<D: Clone + Eq + Hash> TopicBindings<D> {
    pub fn new() -> Self {
        TopicBindings {
            nodes: vec![Node::new()],
            free: Vec::new(),
            bindings: 0,
        }
    }

    /// Number of distinct `(pattern, dest)` bindings.
    pub fn len(&self) -> usize {
        self.bindings
    }

    pub fn is_empty(&self) -> bool {
        self.bindings == 0
    }

    fn child(&self, node: NodeId, edge: Edge<'_>) -> Option<NodeId> {
        let n = &self.nodes[node];
        match edge {
            Edge::Literal(w) => n.literal.get(w).copied(),
            Edge::Star => n.star,
            Edge::Hash => n.hash,
        }
    }

    fn alloc(&mut self) -> NodeId {
        match self.free.pop() {
            Some(id) => id,
            None => {
                self.nodes.push(Node::new());
                self.nodes.len() - 1
            }
        }
    }

    /// Adds the binding; returns true if `(pattern, dest)` was not bound before.
    pub fn bind(&mut self, pattern: &str, dest: D) -> bool {
        let mut node = ROOT;
        for word in split_words(pattern) {
            let edge = Edge::of(word);
            node = match self.child(node, edge) {
                Some(next) => next,
                None => {
                    let next = self.alloc();
                    let n = &mut self.nodes[node];
                    match edge {
                        Edge::Literal(w) => {
                            n.literal.insert(w.into(), next);
                        }
                        Edge::Star => n.star = Some(next),
                        Edge::Hash => n.hash = Some(next),
                    }
                    next
                }
            };
        }
        let added = self.nodes[node].dests.insert(dest);
        if added {
            self.bindings += 1;
        }
        added
    }

    /// Removes the binding; returns true if it existed. Nodes left with neither bindings nor
    /// children are removed, as RabbitMQ's `remove_path_if_empty/2` does.
    pub fn unbind(&mut self, pattern: &str, dest: &D) -> bool {
        let words = split_words(pattern);
        // path[i] = (parent, edge, child) for the i-th word.
        let mut path: Vec<(NodeId, Edge<'_>, NodeId)> = Vec::with_capacity(words.len());
        let mut node = ROOT;
        for word in &words {
            let edge = Edge::of(word);
            match self.child(node, edge) {
                Some(next) => {
                    path.push((node, edge, next));
                    node = next;
                }
                None => return false,
            }
        }
        if !self.nodes[node].dests.remove(dest) {
            return false;
        }
        self.bindings -= 1;
        for &(parent, edge, child) in path.iter().rev() {
            if !self.nodes[child].is_unused() {
                break;
            }
            let p = &mut self.nodes[parent];
            match edge {
                Edge::Literal(w) => {
                    p.literal.remove(w);
                }
                Edge::Star => p.star = None,
                Edge::Hash => p.hash = None,
            }
            // Drop the (empty) maps' allocations too, so a freed slot holds no memory.
            self.nodes[child] = Node::new();
            self.free.push(child);
        }
        true
    }

    /// Pushes onto `out` every destination with a pattern matching `routing_key`, each at most
    /// once per call (destinations already in `out` before the call are not looked at).
    ///
    /// Cost is proportional to the trie states visited. Without `#` every node sits at a fixed
    /// depth, so each node is reached at most once. A `#` lets the same node be reached at
    /// several positions (and, with patterns like `#.#.#.a`, by exponentially many paths), so
    /// every state reached after a `#` edge is memoised: each `(node, position)` is then
    /// expanded at most once, bounding the work by `nodes_reached × (words + 1)`.
    pub fn route(&self, routing_key: &str, out: &mut Vec<D>) {
        let words = split_words(routing_key);
        let len = words.len();
        let mut emitted: HashSet<&D> = HashSet::new();
        // Memo of expanded states: (node, pos, is_skip).
        let mut seen: HashSet<(NodeId, usize, bool)> = HashSet::new();
        let mut stack = vec![Step::Match {
            node: ROOT,
            pos: 0,
            after_hash: false,
        }];

        while let Some(step) = stack.pop() {
            match step {
                Step::Skip { node, pos } => {
                    // `#` swallows 0, 1, … words. If (node, p) was already skipped from, so were
                    // all later positions (same loop), so stop at the first known one.
                    for p in pos..=len {
                        if !seen.insert((node, p, true)) {
                            break;
                        }
                        stack.push(Step::Match {
                            node,
                            pos: p,
                            after_hash: true,
                        });
                    }
                }
                Step::Match {
                    node,
                    pos,
                    after_hash,
                } => {
                    if after_hash && !seen.insert((node, pos, false)) {
                        continue;
                    }
                    let n = &self.nodes[node];
                    if let Some(h) = n.hash {
                        // RabbitMQ tries the `#` child both mid-key and at the end of the key.
                        stack.push(Step::Skip { node: h, pos });
                    }
                    if pos == len {
                        for d in &n.dests {
                            if emitted.insert(d) {
                                out.push(d.clone());
                            }
                        }
                        continue;
                    }
                    // A routing-key word that is literally `*` or `#` is never in `literal`
                    // (those pattern words live in `star`/`hash`), and RabbitMQ's extra literal
                    // lookup of it would only reach children the `*`/`#` steps reach anyway.
                    if let Some(&c) = n.literal.get(words[pos]) {
                        stack.push(Step::Match {
                            node: c,
                            pos: pos + 1,
                            after_hash,
                        });
                    }
                    if let Some(s) = n.star {
                        stack.push(Step::Match {
                            node: s,
                            pos: pos + 1,
                            after_hash,
                        });
                    }
                }
            }
        }
    }

    #[cfg(test)]
    fn live_nodes(&self) -> usize {
        self.nodes.len() - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn routed(t: &TopicBindings<u32>, key: &str) -> Vec<u32> {
        let mut out = Vec::new();
        t.route(key, &mut out);
        out.sort_unstable();
        out
    }

    fn matches(pattern: &str, key: &str) -> bool {
        let mut t = TopicBindings::new();
        t.bind(pattern, 1u32);
        routed(&t, key) == vec![1]
    }

    /// (pattern, routing key, matches?) — checked one binding at a time.
    const CASES: &[(&str, &str, bool)] = &[
        ("a.b.c", "a.b.c", true),
        ("a.b.c", "a.b", false),
        ("a.b", "a.b.c", false),
        ("a.*.c", "a.x.c", true),
        ("a.*.c", "a.c", false),
        ("a.*.c", "a.x.y.c", false),
        ("a.#.c", "a.c", true),
        ("a.#.c", "a.x.y.c", true),
        ("#.c", "c", true),
        ("#.c", "a.b.c", true),
        ("#.c", "a.b.c.d", false),
        ("a.#", "a", true),
        ("a.#", "a.b.c", true),
        ("a.#", "b.a", false),
        ("*", "a", true),
        ("*", "a.b", false),
        ("*.*", "a.b", true),
        ("a.*.#", "a.b", true),
        ("a.*.#", "a.b.c.d", true),
        ("a.*.#", "a", false),
        ("#.*", "a", true),
        ("#.*", "", false),
        ("*.#.*", "a.b", true),
        ("*.#.*", "a", false),
        ("#.a.#", "b.a.b", true),
        // split_topic_key(<<>>) -> []: the empty key is zero words, not one empty word.
        ("", "", true),
        ("*", "", false),
        ("", ".", false),
        ("", "a", false),
        ("a.#", "", false),
        ("#.#", "", true),
        ("a", "", false),
        // Otherwise empty words are words: "." is two, "a." is "a" and "".
        ("*.*", ".", true),
        (".", ".", true),
        ("*", ".", false),
        ("a.*", "a.", true),
        ("a.", "a.", true),
        ("a", "a.", false),
        ("*.a", ".a", true),
        ("a.*.b", "a..b", true),
        ("a..b", "a..b", true),
        ("a.#.b", "a..b", true),
        ("#", ".", true),
        // Only whole-word `*`/`#` are wildcards; in routing keys they are plain words.
        ("a*", "a*", true),
        ("a*", "ab", false),
        ("#a", "a", false),
        ("*", "*", true),
        ("*", "#", true),
        ("a", "*", false),
        ("a.b", "a.#", false),
        ("#", "#", true),
    ];

    #[test]
    fn single_binding_cases() {
        for &(pattern, key, expected) in CASES {
            assert_eq!(
                matches(pattern, key),
                expected,
                "pattern {pattern:?} key {key:?}"
            );
        }
    }

    #[test]
    fn hash_alone_and_repeated_hashes_match_everything_including_empty_key() {
        for p in ["#", "#.#", "#.#.#"] {
            for k in ["", "a", "a.b", ".", "a..b", "#", "*"] {
                assert!(matches(p, k), "{p} should match {k:?}");
            }
        }
    }

    #[test]
    fn bind_unbind_return_values_dedup_and_pruning() {
        let mut t = TopicBindings::new();
        assert!(t.is_empty());
        assert!(
            t.bind("a.*", 1u32)
                && !t.bind("a.*", 1)
                && t.bind("a.*", 2)
                && t.bind("a.#", 1)
                && t.bind("#", 1)
        );
        assert_eq!(t.len(), 4);
        assert_eq!(
            routed(&t, "a.b"),
            vec![1, 2],
            "dest 1 matches three patterns but is reported once"
        );
        let mut out = vec![1, 9];
        t.route("a.b", &mut out);
        assert_eq!(
            out.len(),
            4,
            "route appends and ignores what `out` already held"
        );
        assert!(
            !t.unbind("a.*", &3)
                && !t.unbind("a.b", &1)
                && !t.unbind("x.y.z", &1)
                && !t.unbind("", &1)
        );
        assert!(t.unbind("a.*", &1) && !t.unbind("a.*", &1));
        assert_eq!(routed(&t, "a.b"), vec![1, 2]);
        assert!(t.unbind("#", &1) && t.unbind("a.#", &1));
        assert_eq!(routed(&t, "a.b"), vec![2]);
        assert!(t.unbind("a.*", &2) && t.is_empty());
        assert_eq!(t.live_nodes(), 1, "all nodes but the root pruned");
        assert_eq!(routed(&t, "a.b"), Vec::<u32>::new());

        t.bind("a.b.c", 1);
        t.bind("a.b", 2);
        t.bind("a.#.d", 3);
        let before = t.live_nodes();
        assert!(t.unbind("a.b.c", &1));
        assert_eq!(t.live_nodes(), before - 1, "shared prefix a.b kept");
        assert_eq!(
            (routed(&t, "a.b"), routed(&t, "a.x.y.d")),
            (vec![2], vec![3])
        );
        assert!(t.unbind("a.b", &2) && t.unbind("a.#.d", &3));
        assert_eq!(t.live_nodes(), 1);
        let arena = t.nodes.len();
        t.bind("x.y.z", 4);
        assert_eq!(t.nodes.len(), arena, "freed slots are reused");
        assert_eq!(routed(&t, "x.y.z"), vec![4]);
    }

    #[test]
    fn many_hashes_do_not_blow_up() {
        let mut t = TopicBindings::new();
        let hashes = vec!["#"; 40].join(".");
        t.bind(&(hashes.clone() + ".a"), 1u32);
        t.bind(&(hashes + ".*.#.*.b"), 2);
        let miss = vec!["x"; 200].join(".");
        let start = Instant::now();
        assert_eq!(routed(&t, &miss), Vec::<u32>::new());
        assert_eq!(routed(&t, &(miss.clone() + ".a")), vec![1]);
        assert_eq!(routed(&t, &(miss + ".b")), vec![2]);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "took {:?}",
            start.elapsed()
        );
    }

    #[test]
    fn ten_thousand_bindings() {
        let mut t = TopicBindings::new();
        let key = |i: u32| format!("stock.{}.{}", i % 100, i);
        for i in 0..10_000u32 {
            assert!(t.bind(&key(i), i));
        }
        for i in 0..100u32 {
            t.bind(&format!("stock.{i}.*"), 100_000 + i);
        }
        t.bind("stock.#", 200_000);
        t.bind("*.*.9999", 300_000);
        assert_eq!(t.len(), 10_102);
        assert_eq!(
            routed(&t, "stock.99.9999"),
            vec![9999, 100_099, 200_000, 300_000]
        );
        assert_eq!(routed(&t, "stock.5.nope"), vec![100_005, 200_000]);
        assert_eq!(routed(&t, "bonds.1.1"), Vec::<u32>::new());
        let start = Instant::now();
        for i in 0..10_000u32 {
            let mut want = vec![i, 100_000 + i % 100, 200_000];
            want.extend((i == 9999).then_some(300_000));
            assert_eq!(routed(&t, &key(i)), want);
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "took {:?}",
            start.elapsed()
        );
        for i in 0..10_000u32 {
            assert!(t.unbind(&key(i), &i));
        }
        for i in 0..100u32 {
            assert!(t.unbind(&format!("stock.{i}.*"), &(100_000 + i)));
        }
        assert!(t.unbind("stock.#", &200_000) && t.unbind("*.*.9999", &300_000) && t.is_empty());
        assert_eq!(t.live_nodes(), 1);
    }

    /// Straightforward recursive matcher over word lists, used as the oracle.
    fn reference_match(p: &[&str], k: &[&str]) -> bool {
        match p.split_first() {
            None => k.is_empty(),
            Some((&"#", rest)) => (0..=k.len()).any(|i| reference_match(rest, &k[i..])),
            Some((&"*", rest)) => !k.is_empty() && reference_match(rest, &k[1..]),
            Some((w, rest)) => k.first() == Some(w) && reference_match(rest, &k[1..]),
        }
    }

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn random_key(rng: &mut XorShift, alphabet: &[&str], max_words: usize) -> String {
        let n = rng.below(max_words + 1);
        (0..n)
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect::<Vec<_>>()
            .join(".")
    }

    #[test]
    fn randomized_against_reference_matcher() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for round in 0..200 {
            let mut t = TopicBindings::new();
            let mut patterns: Vec<(String, u32)> = Vec::new();
            for i in 0..40u32 {
                let p = random_key(&mut rng, &["a", "b", "", "*", "#", "#"], 5);
                let dest = i % 25; // several patterns share a destination
                if t.bind(&p, dest) {
                    patterns.push((p, dest));
                }
            }
            // Remove a few bindings to exercise pruning alongside matching.
            for _ in 0..5 {
                if patterns.is_empty() {
                    break;
                }
                let (p, d) = patterns.swap_remove(rng.below(patterns.len()));
                assert!(t.unbind(&p, &d));
            }
            for _ in 0..50 {
                let key = random_key(&mut rng, &["a", "b", "", "c"], 6);
                let kw = split_words(&key);
                let mut expected: Vec<u32> = patterns
                    .iter()
                    .filter(|(p, _)| reference_match(&split_words(p), &kw))
                    .map(|&(_, d)| d)
                    .collect();
                expected.sort_unstable();
                expected.dedup();
                assert_eq!(
                    routed(&t, &key),
                    expected,
                    "round {round} key {key:?} {patterns:?}"
                );
            }
        }
    }
}
