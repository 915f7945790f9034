//! What a checkpoint may leave out: a message that was stored, enqueued and removed again
//! (acknowledged, dropped) between two checkpoints never needs to reach LMDB — RabbitMQ's trick
//! of not writing what a consumer acknowledged before it got to disk. The log keeps every
//! operation, so a crash before the checkpoint replays them all and ends in the same state.
//!
//! An enqueue and a removal of the same queue position within one checkpoint cancel out (so do
//! a schedule entry and its unscheduling: a message delayed for less than a checkpoint); a
//! message put within the checkpoint whose every enqueue there cancelled (and which had at
//! least one) is left out too — its reference count would reach zero and delete it. A message
//! nothing enqueued is still written (recovery drops it as an orphan, as before).
//!
//! This file only decides; writer.rs applies what is left.

use ahash::AHashMap;

use super::{DueKey, Op};

/// Where an entry stands: a queue position, or a schedule entry.
#[derive(PartialEq, Eq, Hash)]
enum Place {
    Queue(u64, u64),
    Schedule(u64, DueKey),
}

/// Sets `skip[i]` for each of `ops` the checkpoint can leave out (one pass over the operations
/// and two hash maps, per checkpoint rather than per message).
pub fn plan(ops: &[Op], skip: &mut Vec<bool>) {
    skip.clear();
    skip.resize(ops.len(), false);
    // Queue position or schedule entry → index of the enqueue (schedule) still standing there.
    let mut enqueued: AHashMap<Place, usize> = AHashMap::new();
    // Message id → (index of its put in this checkpoint, enqueues, enqueues cancelled).
    let mut puts: AHashMap<u64, (usize, u32, u32)> = AHashMap::new();
    for (i, op) in ops.iter().enumerate() {
        let op = match op {
            Op::Unlogged(op) => op,
            op => op,
        };
        match *op {
            Op::PutMessage { id, .. } => {
                puts.insert(id, (i, 0, 0));
            }
            Op::Enqueue {
                queue_id, seq, id, ..
            } => placed(&mut enqueued, &mut puts, Place::Queue(queue_id, seq), id, i),
            Op::Schedule { schedule_id, key } => placed(
                &mut enqueued,
                &mut puts,
                Place::Schedule(schedule_id, key),
                key.id,
                i,
            ),
            Op::Remove {
                queue_id, seq, id, ..
            } => removed(
                &mut enqueued,
                &mut puts,
                skip,
                Place::Queue(queue_id, seq),
                id,
                i,
            ),
            Op::Unschedule { schedule_id, key } => removed(
                &mut enqueued,
                &mut puts,
                skip,
                Place::Schedule(schedule_id, key),
                key.id,
                i,
            ),
            // A dropped queue's (schedule's) standing entries are applied, then dropped with it.
            Op::DropQueue { queue_id } => {
                enqueued.retain(|place, _| !matches!(place, Place::Queue(q, _) if *q == queue_id))
            }
            Op::DropSchedule { schedule_id } => enqueued
                .retain(|place, _| !matches!(place, Place::Schedule(s, _) if *s == schedule_id)),
            // Streams never remove single entries: nothing of theirs cancels.
            Op::RemoveSegment { .. }
            | Op::RemoveEntries { .. }
            | Op::Unlogged(_)
            | Op::StreamAppend { .. }
            | Op::StreamSegment { .. }
            | Op::StreamTrim { .. }
            | Op::Notify { .. }
            | Op::Shutdown => {}
        }
    }
    for (at, enqueues, cancelled) in puts.into_values() {
        if enqueues > 0 && enqueues == cancelled {
            skip[at] = true;
        }
    }
}

/// Op `i` placed message `id` at `place`.
fn placed(
    enqueued: &mut AHashMap<Place, usize>,
    puts: &mut AHashMap<u64, (usize, u32, u32)>,
    place: Place,
    id: u64,
    i: usize,
) {
    enqueued.insert(place, i);
    if let Some(put) = puts.get_mut(&id) {
        put.1 += 1;
    }
}

/// Op `i` removed message `id` from `place`: cancels with the op that placed it there, if that
/// is in this checkpoint.
fn removed(
    enqueued: &mut AHashMap<Place, usize>,
    puts: &mut AHashMap<u64, (usize, u32, u32)>,
    skip: &mut [bool],
    place: Place,
    id: u64,
    i: usize,
) {
    if let Some(at) = enqueued.remove(&place) {
        skip[at] = true;
        skip[i] = true;
        if let Some(put) = puts.get_mut(&id) {
            put.2 += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::store::put_for_test;

    fn put(id: u64) -> Op {
        put_for_test(id, Bytes::from_static(b"x"))
    }

    fn enqueue(queue_id: u64, seq: u64, id: u64) -> Op {
        Op::Enqueue {
            queue_id,
            seq,
            id,
            meta: Default::default(),
        }
    }

    fn remove(queue_id: u64, seq: u64, id: u64) -> Op {
        Op::Remove {
            queue_id,
            seq,
            id,
            scattered: false,
        }
    }

    fn skipped(ops: &[Op]) -> Vec<usize> {
        let mut skip = Vec::new();
        plan(ops, &mut skip);
        (0..ops.len()).filter(|&i| skip[i]).collect()
    }

    #[test]
    fn a_message_acked_before_the_checkpoint_is_left_out_entirely() {
        let ops = [put(1), enqueue(7, 1, 1), remove(7, 1, 1)];
        assert_eq!(skipped(&ops), vec![0, 1, 2]);
    }

    #[test]
    fn a_fanned_out_message_stays_while_one_queue_still_holds_it() {
        let ops = [put(1), enqueue(7, 1, 1), enqueue(8, 1, 1), remove(7, 1, 1)];
        assert_eq!(skipped(&ops), vec![1, 3]);
    }

    #[test]
    fn removals_of_older_entries_and_unreferenced_puts_are_applied() {
        // Enqueued in an earlier checkpoint: the removal must reach LMDB.
        assert!(skipped(&[remove(7, 1, 1)]).is_empty());
        // Nothing enqueued it (every queue refused): stored, an orphan for recovery.
        assert!(skipped(&[put(2)]).is_empty());
        // Put earlier, enqueued and removed now: the pair cancels, the put is not here.
        assert_eq!(skipped(&[enqueue(7, 2, 3), remove(7, 2, 3)]), vec![0, 1]);
    }

    #[test]
    fn a_drop_between_enqueue_and_removal_keeps_both() {
        let ops = [
            put(1),
            enqueue(7, 1, 1),
            Op::DropQueue { queue_id: 7 },
            remove(7, 1, 1),
        ];
        assert!(skipped(&ops).is_empty());
    }
}
