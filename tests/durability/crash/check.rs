//! The end-of-test checks of the classic and quorum crash tests, over everything the clients of
//! every life saw and the final drain. The paged shapes (paged.rs) are classic queues: these
//! checks hold for their queue too (a priority queue's order is kept per priority level; what a
//! consumer rejected is paged.rs's to account for), and paged.rs adds its own.
//!
//! In a classic queue, what a consumer gets within one life is in publish order too (older lives
//! first): nothing is requeued while a consumer runs, so it takes the queue from its head, and
//! the messages recovered after a crash are ahead of any published since, as in RabbitMQ.
//!
//! Where quorum queues differ, as RabbitMQ 3.10 has them:
//!
//! - a confirmed transient message must survive too (the publisher counts it as confirmed);
//! - every delivery carries `x-delivery-count`; RabbitMQ sets redelivered exactly when it is
//!   above 0, so a delivery with redelivered = false must say 0 (warren starts the count again
//!   at 0 after a restart and marks every recovered message redelivered, which agrees);
//! - messages a consumer held unacked when the broker died go back to the queue as returned
//!   ones, and RabbitMQ puts returned messages at the back: only the messages no consumer had
//!   seen must still be in publish order.

use std::collections::{HashMap, HashSet};

use super::Kind;
use super::clients::{Log, PublishedId, Seen};
use super::paged::effective_priority;

/// The end-of-test checks over everything the clients saw and the final drain; returns the
/// violations and a summary line.
pub(super) fn check(
    kind: Kind,
    l: &mut Log,
    drained: Vec<Seen>,
    final_life: usize,
) -> (Vec<String>, String) {
    let mut violations: Vec<String> = Vec::new();

    // 1. Confirmed and never acked (nor rejected): present.
    let depth = drained.len();
    let present: HashSet<&str> = drained.iter().map(|s| s.id.as_str()).collect();
    let mut lost: Vec<&String> = l
        .confirmed
        .iter()
        .filter(|id| {
            !l.acked.contains(*id)
                && !l.rejected.contains_key(*id)
                && !present.contains(id.as_str())
        })
        .collect();
    lost.sort();
    if !lost.is_empty() {
        violations.push(format!(
            "{} confirmed (and never acked or rejected) messages lost, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(10)]
        ));
    }

    // 2. Nothing unknown; (classic) no transient message from an earlier life.
    let all: Vec<Seen> = l.deliveries.drain(..).chain(drained).collect();
    for s in &all {
        if l.sent.contains(&s.id) {
            continue;
        }
        match l.sent_transient.get(&s.id) {
            Some(_) if kind.stores_transient() => {}
            Some(&sent_life) if sent_life == s.life => {}
            Some(&sent_life) => violations.push(format!(
                "transient message {} published to life {sent_life} delivered by life {}",
                s.id, s.life
            )),
            None => violations.push(format!(
                "life {}: delivered {:?}, which was never published",
                s.life, s.id
            )),
        }
    }

    // 3. Seen before: only again with redelivered, and never twice in one life.
    let mut seen_in: HashMap<&str, usize> = HashMap::new();
    for s in &all {
        if let Some(&prev) = seen_in.get(s.id.as_str()) {
            if prev == s.life {
                violations.push(format!(
                    "life {}: {} delivered twice by the same broker (nothing was requeued)",
                    s.life, s.id
                ));
            } else if !s.redelivered {
                violations.push(format!(
                    "life {}: {} delivered before (life {prev}) but redelivered = false",
                    s.life, s.id
                ));
            }
        }
        seen_in.insert(&s.id, s.life);
    }
    check_delivery_counts(kind, &all, &mut violations);

    // 4. What is left is in publish order: older lives first; per publisher, increasing n. In a
    // quorum queue, what no consumer had seen before the final drain; in a priority queue,
    // within each priority level.
    let final_ids: Vec<&str> = all
        .iter()
        .filter(|s| s.life == final_life)
        .map(|s| s.id.as_str())
        .collect();
    let seen_before: HashSet<&str> = all
        .iter()
        .filter(|s| s.life < final_life)
        .map(|s| s.id.as_str())
        .collect();
    let ordered = final_ids
        .iter()
        .copied()
        .filter(|id| kind != Kind::Quorum || !seen_before.contains(*id));
    let order = Order { kind, l };
    violations.extend(order.check(ordered, "the final drain"));

    // 5. So is what a consumer got in one life from a classic queue (nothing is requeued
    // meanwhile): messages recovered from earlier lives before the ones published since.
    if kind.is_classic() {
        for life in 0..final_life {
            let got = all.iter().filter(|s| s.life == life).map(|s| s.id.as_str());
            violations.extend(order.check(got, &format!("the consumer of life {life}")));
        }
    }

    let acked_back = final_ids.iter().filter(|id| l.acked.contains(**id)).count();
    let transient_left = final_ids
        .iter()
        .filter(|id| l.sent_transient.contains_key(**id))
        .count();
    let summary = format!(
        "{kind:?} final: {depth} messages left and consumed ({transient_left} transient), {} \
         sent in all, {} confirmed, {} acked ({} of those came back), {} nacks",
        l.sent.len() + l.sent_transient.len(),
        l.confirmed.len(),
        l.acked.len(),
        acked_back,
        l.nacked,
    );
    (violations, summary)
}

/// The order a queue keeps (check 4): older lives first; per publisher, increasing n; in a
/// priority queue, within each priority level.
#[derive(Clone, Copy)]
struct Order<'a> {
    kind: Kind,
    l: &'a Log,
}

impl Order<'_> {
    /// The level a message waits at: its priority in a priority queue, else 0.
    fn level(&self, id: &str) -> u8 {
        match self.kind {
            Kind::Priority => effective_priority(self.l.priorities.get(id).copied().flatten()),
            _ => 0,
        }
    }

    /// A violation if `ids` (delivered in this order by `what`) are not in order.
    fn check<'a>(&self, ids: impl Iterator<Item = &'a str>, what: &str) -> Option<String> {
        let mut out_of_order = Vec::new();
        let mut last_life: HashMap<u8, usize> = HashMap::new();
        let mut last_n: HashMap<(u8, &str), u64> = HashMap::new();
        for id in ids {
            let Some(PublishedId { tag, life, n }) = PublishedId::parse(id) else {
                continue;
            };
            let level = self.level(id);
            let at = match self.kind {
                Kind::Priority => format!(" (priority {level})"),
                _ => String::new(),
            };
            let latest = last_life.entry(level).or_default();
            if life < *latest {
                out_of_order.push(format!(
                    "{id}{at} (life {life}) after a message published in life {latest}"
                ));
            }
            *latest = (*latest).max(life);
            if let Some(&prev) = last_n.get(&(level, tag))
                && n <= prev
            {
                out_of_order.push(format!("{id}{at} after {tag}-{prev}"));
            }
            last_n.insert((level, tag), n);
        }
        (!out_of_order.is_empty()).then(|| {
            format!(
                "order: {what} delivered {} messages out of publish order, e.g. {:?}",
                out_of_order.len(),
                &out_of_order[..out_of_order.len().min(5)]
            )
        })
    }
}

/// A quorum queue's deliveries carry `x-delivery-count`, an integer, 0 unless redelivered; a
/// classic queue's carry none (the publishers set no headers).
fn check_delivery_counts(kind: Kind, all: &[Seen], violations: &mut Vec<String>) {
    let mut bad = Vec::new();
    for s in all {
        let fine = match (&s.delivery_count, kind) {
            (None, kind) if kind.is_classic() => true,
            (Some(Ok(n)), Kind::Quorum) => *n >= 0 && (s.redelivered || *n == 0),
            _ => false,
        };
        if !fine {
            bad.push(format!(
                "life {}: {} (redelivered = {}) has x-delivery-count {:?}",
                s.life, s.id, s.redelivered, s.delivery_count
            ));
        }
    }
    if !bad.is_empty() {
        violations.push(format!(
            "{} deliveries with a wrong x-delivery-count, e.g. {:?}",
            bad.len(),
            &bad[..bad.len().min(5)]
        ));
    }
}
