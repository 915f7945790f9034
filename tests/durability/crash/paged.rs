//! The paged queue shapes of issue #18 under the crash test: a classic queue that dead-letters
//! ([`Kind::DeadLettering`]) and a priority queue ([`Kind::Priority`]), on brokers that page a
//! queue's backlog beyond [`PAGE_THRESHOLD`] ready messages, so that most of what a kill leaves
//! behind (thousands of messages) is paged. Publishers, kills and restarts are mod.rs's; the
//! checks of check.rs hold for both queues, and these are added.
//!
//! Dead-lettering queue: `x-dead-letter-exchange` [`DLX`], a durable fanout exchange bound to
//! the durable queue [`DEAD_LETTERS`]. The consumer rejects (requeue = false) 10 to 30% of its
//! deliveries and, every 16 rejects, makes a round trip on its channel: once that is back, the
//! broker has handled them (clients.rs). At the end both queues are drained. RabbitMQ's classic dead-lettering is at-most-once: a dead letter may be lost in
//! a crash. Asserted:
//!
//! - (check.rs) every confirmed message the consumer never acked nor rejected is in the source
//!   queue, in publish order, with the usual redelivery rules;
//! - every message in the dead-letter queue was rejected by the consumer, at least as many times
//!   as it is there (a rejection makes one dead letter; a reject lost in a crash leaves the
//!   message to be delivered and rejected again), is persistent (a transient dead letter does
//!   not outlive its broker) and says why: `x-first-death-reason` rejected,
//!   `x-first-death-queue` the source;
//! - no message is both in the dead-letter queue and back in the source;
//! - a persistent message whose rejection the broker had handled before a publish that was
//!   later confirmed was sent (same broker life) is in the dead-letter queue.
//!
//! The last two are warren's, stricter than RabbitMQ (which acknowledges the original and
//! writes the copy independently): warren's store writes every operation in one ordered log
//! (STORE.md), the removal from the source before the copy, and a publisher confirm makes
//! everything queued before it durable. Any other rejected message may be missing from both
//! queues: every consumer's broker life ends in a kill, after its rejects. Those are counted
//! and printed, with the rejected messages back in the source (the reject was lost) and the ones
//! redelivered and acked since.
//!
//! Priority queue: `x-max-priority` [`MAX_PRIORITY`]; the publishers give their messages
//! priorities 0 to `MAX_PRIORITY + 2` (above the maximum counts as the maximum) or none
//! (counts as 0), see [`priority_for`]. Asserted, beyond check.rs's (nothing confirmed and
//! never acked lost; what is left in publish order per publisher, older lives first, within
//! each priority level):
//!
//! - every delivery carries the priority it was published with;
//! - the final drain, of a queue at rest (nothing is published after the last kill), delivers
//!   in non-increasing priority.

use std::collections::{HashMap, HashSet};

use amq_protocol::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

use super::Kind;
use super::clients::{Log, PublishedId, Seen};
use crate::common::*;

/// Ready messages a queue keeps in memory before it pages (`queue_page_threshold`): small, so
/// that the backlog is paged almost entirely.
pub(super) const PAGE_THRESHOLD: usize = 50;

/// The source queue's dead-letter exchange (fanout, durable).
pub(super) const DLX: &str = "crash-dlx";

/// The durable queue bound to [`DLX`].
pub(super) const DEAD_LETTERS: &str = "crash-dead-letters";

/// The priority queue's `x-max-priority`.
pub(super) const MAX_PRIORITY: u8 = 5;

/// The brokers' configuration for a paged shape.
pub(super) fn config() -> String {
    format!("queue_page_threshold = {PAGE_THRESHOLD}\n")
}

/// The source queue's declare arguments.
pub(super) fn dead_lettering_arguments() -> FieldTable {
    table(vec![("x-dead-letter-exchange", long_str(DLX))])
}

/// The priority queue's declare arguments.
pub(super) fn priority_arguments() -> FieldTable {
    table(vec![(
        "x-max-priority",
        AMQPValue::LongInt(i32::from(MAX_PRIORITY)),
    )])
}

/// Declares [`DLX`] and [`DEAD_LETTERS`], bound to it.
pub(super) async fn declare_dead_letter_target(ch: &Channel) {
    declare_durable_exchange(ch, DLX, ExchangeKind::Fanout).await;
    declare_durable_queue(ch, DEAD_LETTERS).await;
    bind_queue(ch, DEAD_LETTERS, DLX, "").await;
}

/// The priority a publisher gives its `n`th message: 0 to `MAX_PRIORITY + 2`, or none (one in
/// nine each), scattered.
pub(super) fn priority_for(n: u64) -> Option<u8> {
    let choices = u64::from(MAX_PRIORITY) + 4;
    let p = (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % choices;
    (p + 1 < choices).then_some(p as u8)
}

/// The level a message published with `priority` waits at.
pub(super) fn effective_priority(priority: Option<u8>) -> u8 {
    priority.unwrap_or(0).min(MAX_PRIORITY)
}

/// The checks of this file for `kind` (none for the other kinds): `left` is the final drain of
/// `source`, `dead` that of [`DEAD_LETTERS`]. Violations, and a line for the summary.
pub(super) fn check(
    kind: Kind,
    l: &Log,
    source: &str,
    left: &[Seen],
    dead: &[Seen],
) -> (Vec<String>, Option<String>) {
    match kind {
        Kind::DeadLettering => {
            let (violations, summary) = check_dead_letters(l, source, left, dead);
            (violations, Some(summary))
        }
        Kind::Priority => (check_priorities(l, left), None),
        _ => (Vec::new(), None),
    }
}

/// What became of the rejected messages (see the module doc).
fn check_dead_letters(
    l: &Log,
    source: &str,
    left: &[Seen],
    dead: &[Seen],
) -> (Vec<String>, String) {
    let mut violations = Vec::new();
    let in_source: HashSet<&str> = left.iter().map(|s| s.id.as_str()).collect();
    let mut copies: HashMap<&str, usize> = HashMap::new();
    let mut unexplained = Vec::new();
    for s in dead {
        *copies.entry(s.id.as_str()).or_default() += 1;
        let said = s
            .first_death
            .as_ref()
            .map(|(r, q)| (r.as_str(), q.as_str()));
        if said != Some(("rejected", source)) {
            unexplained.push(format!("{} ({:?})", s.id, s.first_death));
        }
    }
    if !unexplained.is_empty() {
        violations.push(format!(
            "{} dead letters without x-first-death-reason rejected and x-first-death-queue \
             {source}, e.g. {:?}",
            unexplained.len(),
            &unexplained[..unexplained.len().min(5)]
        ));
    }
    let mut sorted: Vec<(&str, usize)> = copies.iter().map(|(id, n)| (*id, *n)).collect();
    sorted.sort();
    for (id, n) in sorted {
        let rejections = l.rejected.get(id).copied().unwrap_or(0);
        if rejections == 0 {
            violations.push(format!("dead letter {id}: the consumer never rejected it"));
        } else if n > rejections {
            violations.push(format!(
                "dead letter {id}: {n} copies, but the consumer rejected it {rejections} times"
            ));
        }
        if l.sent_transient.contains_key(id) {
            violations.push(format!(
                "dead letter {id}: transient, yet it outlived its broker"
            ));
        }
        if in_source.contains(id) {
            violations.push(format!(
                "dead letter {id}: back in the source queue too (its removal is logged first)"
            ));
        }
    }

    // When each life's last confirmed publish was sent.
    let mut last_confirmed_send: HashMap<usize, u64> = HashMap::new();
    for id in &l.confirmed {
        if let (Some(p), Some(&(sent, _))) = (PublishedId::parse(id), l.times.get(id)) {
            let last = last_confirmed_send.entry(p.life).or_default();
            *last = (*last).max(sent);
        }
    }
    let (mut back, mut acked_since, mut transient, mut lost, mut covered) = (0, 0, 0, 0, 0);
    let mut missing = Vec::new();
    for id in l.rejected.keys() {
        let handled_before_a_confirm = l
            .rejects_handled
            .get(id)
            .is_some_and(|&(life, at)| last_confirmed_send.get(&life).is_some_and(|&s| s > at));
        let persistent = l.sent.contains(id);
        if handled_before_a_confirm && persistent {
            covered += 1;
        }
        if copies.contains_key(id.as_str()) {
            continue;
        }
        if handled_before_a_confirm && persistent {
            missing.push(id.as_str());
        } else if in_source.contains(id.as_str()) {
            back += 1;
        } else if l.acked.contains(id) {
            acked_since += 1;
        } else if !persistent {
            transient += 1;
        } else {
            lost += 1;
        }
    }
    if !missing.is_empty() {
        missing.sort();
        violations.push(format!(
            "{} rejected messages not in the dead-letter queue, though their rejects were handled \
             before a publish that was confirmed, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        ));
    }
    let summary = format!(
        "dead-lettering: {} messages rejected ({} rejects, {} handled before a later confirm), \
         {} dead letters left and consumed; of the rejected messages missing from them: {back} \
         back in the source (the reject lost), {acked_since} redelivered and acked since, \
         {transient} transient, {lost} persistent ones lost in a kill (at-most-once)",
        l.rejected.len(),
        l.rejected.values().sum::<usize>(),
        covered,
        dead.len(),
    );
    (violations, summary)
}

/// Every delivery has the priority it was published with; the final drain (`left`) comes in
/// non-increasing priority.
fn check_priorities(l: &Log, left: &[Seen]) -> Vec<String> {
    let mut violations = Vec::new();
    let changed: Vec<String> = l
        .deliveries
        .iter()
        .chain(left)
        .filter_map(|s| {
            let published = *l.priorities.get(&s.id)?;
            (s.priority != published).then(|| {
                format!(
                    "life {}: {} priority {:?}, published with {published:?}",
                    s.life, s.id, s.priority
                )
            })
        })
        .collect();
    if !changed.is_empty() {
        violations.push(format!(
            "{} deliveries with another priority than published, e.g. {:?}",
            changed.len(),
            &changed[..changed.len().min(5)]
        ));
    }
    let mut rises = Vec::new();
    for (i, pair) in left.windows(2).enumerate() {
        let (before, after) = (
            effective_priority(pair[0].priority),
            effective_priority(pair[1].priority),
        );
        if after > before {
            rises.push(format!(
                "#{}: {} (priority {after}) after {} (priority {before})",
                i + 1,
                pair[1].id,
                pair[0].id
            ));
        }
    }
    if !rises.is_empty() {
        violations.push(format!(
            "final drain of {} messages, at rest: {} deliveries of a higher priority than the one \
             before, e.g. {:?}",
            left.len(),
            rises.len(),
            &rises[..rises.len().min(5)]
        ));
    }
    violations
}
