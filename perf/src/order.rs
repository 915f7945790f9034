//! The delivery order checks a consumer makes on warren-perf's own messages (their bodies carry
//! the producer's id and message number, see [`crate::wire`]):
//!
//! - **order violations**: within one producer and one priority level, message numbers must
//!   arrive in increasing order (gaps are fine: expired, dropped or other consumers' messages).
//!   A queue delivers each level first in, first out, and any one consumer sees a subsequence of
//!   that, so this holds for a plain queue, a priority queue and several consumers alike. A
//!   redelivery (after a consumer's failure) does count as a violation.
//! - **priority inversions**: deliveries whose `priority` is higher than the previous delivery's
//!   on the same consumer. Draining a priority queue whose backlog was published before the
//!   consumer started, there should be none (highest level first, then down). They are counted
//!   for every run but mean nothing while publishers still add higher-priority messages, or
//!   for a queue without x-max-priority (which ignores the property).
//!
//! A message without the `priority` property counts as priority 0, as RabbitMQ treats it.

use std::collections::HashMap;

use crate::wire::split_seq;

/// Producers below this id keep their last numbers in a flat table (no hashing per delivery).
const FLAT_PRODUCERS: usize = 256;

#[derive(Debug, Default)]
pub struct OrderCheck {
    /// Last message number + 1 (0: none yet) by `producer * 256 + priority`, for producer ids
    /// below [`FLAT_PRODUCERS`]; grown on demand.
    flat: Vec<u64>,
    /// The last message number of the other producers, by (producer, priority).
    other: HashMap<(u16, u8), u64>,
    last_priority: Option<u8>,
    pub violations: u64,
    pub inversions: u64,
}

/// What one delivery broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Broken {
    pub order: bool,
    pub priority: bool,
}

impl OrderCheck {
    /// One delivery, in arrival order: its `priority` property and its body's sequence field.
    pub fn observe(&mut self, priority: Option<u8>, seq_field: u64) -> Broken {
        let priority = priority.unwrap_or(0);
        let (producer, seq) = split_seq(seq_field);
        let mut broken = Broken::default();
        // The highest number seen is kept, so one late message counts once.
        let in_order = if (producer as usize) < FLAT_PRODUCERS {
            let i = (producer as usize) << 8 | priority as usize;
            if i >= self.flat.len() {
                self.flat.resize(i + 1, 0);
            }
            let slot = &mut self.flat[i];
            let ok = seq + 1 > *slot;
            *slot = (*slot).max(seq + 1);
            ok
        } else {
            let slot = self.other.entry((producer, priority)).or_insert(0);
            let ok = seq + 1 > *slot;
            *slot = (*slot).max(seq + 1);
            ok
        };
        if !in_order {
            broken.order = true;
            self.violations += 1;
        }
        if self.last_priority.is_some_and(|p| priority > p) {
            broken.priority = true;
            self.inversions += 1;
        }
        self.last_priority = Some(priority);
        broken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::seq_field;

    #[test]
    fn increasing_per_producer_and_level_gaps_allowed() {
        let mut c = OrderCheck::default();
        // Two producers interleaved, with gaps: in order.
        for (p, s) in [(0, 0), (1, 0), (0, 2), (1, 1), (0, 3), (1, 5)] {
            assert_eq!(c.observe(None, seq_field(p, s)), Broken::default());
        }
        // Producer 0's message 1 after its 3: one violation; the next (4) is fine again.
        assert!(c.observe(None, seq_field(0, 1)).order);
        assert!(!c.observe(None, seq_field(0, 4)).order);
        // A duplicate (a redelivery) is a violation too.
        assert!(c.observe(None, seq_field(1, 5)).order);
        assert_eq!((c.violations, c.inversions), (2, 0));
        // Producer ids past the flat table: the same rules.
        assert!(!c.observe(None, seq_field(300, 7)).order);
        assert!(c.observe(None, seq_field(300, 7)).order);
        assert!(!c.observe(None, seq_field(300, 8)).order);
        assert_eq!(c.violations, 3);
    }

    #[test]
    fn levels_are_separate_and_inversions_are_rises() {
        let mut c = OrderCheck::default();
        // A drained priority queue: 9s first (producer order kept), then 5s, then 0s.
        for (prio, s) in [(9, 9), (9, 19), (5, 5), (5, 15), (0, 0), (0, 10)] {
            assert_eq!(
                c.observe(Some(prio), seq_field(0, s)),
                Broken::default(),
                "{prio}/{s}"
            );
        }
        // A level going up again: an inversion, not an order violation (new number for 9).
        assert_eq!(
            c.observe(Some(9), seq_field(0, 29)),
            Broken {
                order: false,
                priority: true
            }
        );
        // Priority 0 and no priority are the same level.
        assert!(c.observe(None, seq_field(0, 1)).order);
        assert_eq!((c.violations, c.inversions), (1, 1));
    }
}
