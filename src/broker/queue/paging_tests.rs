//! Paging beyond the ones page_in_tests.rs covers: every queue shape pages — priority levels,
//! transient messages and non-durable queues (spilled), per-message expiry, byte limits — and
//! a restarted queue gets its levels, sizes and expiries back from the index.

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldTable};

use super::Fixture;
use crate::broker::clock;
use crate::broker::queue::MemorySplit;
use crate::broker::queue::stream::epoch_ms;
use crate::store::IndexSegment;

fn arguments(pairs: &[(&str, i64)]) -> FieldTable {
    let mut table = FieldTable::default();
    for (k, v) in pairs {
        table.insert((*k).into(), AMQPValue::LongLongInt(*v));
    }
    table
}

fn with_priority(p: u8) -> BasicProperties {
    BasicProperties::default().with_priority(p)
}

impl Fixture {
    fn publish_with(&mut self, persistent: bool, properties: BasicProperties) {
        let message = self.message_with(persistent, properties);
        self.queue.publish(message);
    }

    fn split(&self) -> MemorySplit {
        self.queue.memory_split()
    }

    fn stored_messages(&self) -> u64 {
        self.store.record_counts().expect("counts").messages
    }
}

/// Priorities 0, 9 and 5, published so that the in-memory part is all priority 0.
fn publish_mixed_priorities(f: &mut Fixture) {
    for p in [0, 0, 0, 9, 9, 9, 5, 5] {
        f.publish_with(true, with_priority(p));
    }
}

#[test]
fn a_priority_queue_pages_per_level_and_still_delivers_the_highest_first() {
    let mut f = Fixture::with_arguments(arguments(&[("x-max-priority", 9)]));
    publish_mixed_priorities(&mut f);
    f.commit();
    f.queue.dispatch(); // settles what the store applied
    let split = f.split();
    assert_eq!((split.ram, split.paged_out), (2, 6), "{split:?}");
    assert_eq!(f.drain(), vec![3, 4, 5, 6, 7, 0, 1, 2]);
}

#[test]
fn a_non_durable_queue_spills_its_backlog_and_forgets_it_once_delivered() {
    let mut f = Fixture::build(FieldTable::default(), false);
    for _ in 0..10 {
        f.publish(false);
    }
    f.commit();
    f.queue.dispatch();
    let split = f.split();
    assert_eq!((split.ram, split.paged_out), (2, 8), "{split:?}");
    assert_eq!(split.paged_out_bytes, 16, "\"m2\" … \"m9\"");
    assert_eq!(f.stored_messages(), 8, "the spilled bodies");
    assert_eq!(f.drain(), (0..10).collect::<Vec<_>>());
    f.commit();
    assert_eq!(f.stored_messages(), 0, "spilled entries go once paged in");
}

#[test]
fn purging_a_spilled_backlog_leaves_nothing_in_the_store() {
    let mut f = Fixture::build(arguments(&[("x-max-priority", 9)]), false);
    publish_mixed_priorities(&mut f);
    f.commit();
    assert_eq!(f.queue.purge(), 8);
    f.commit();
    assert_eq!(f.stored_messages(), 0);
}

#[test]
fn paged_messages_expire_at_the_head_and_the_store_forgets_them() {
    let mut f = Fixture::new();
    for _ in 0..10 {
        f.publish_with(
            true,
            BasicProperties::default().with_expiration("50".into()),
        );
    }
    f.commit();
    std::thread::sleep(std::time::Duration::from_millis(80));
    assert!(!f.queue.expire_at_rest(clock::now_ms()));
    assert_eq!(f.queue.message_count(), 0);
    f.commit();
    assert_eq!(f.stored_messages(), 0);
}

#[test]
fn byte_limits_count_paged_messages_and_drop_the_head_wherever_it_is() {
    let mut f = Fixture::with_arguments(arguments(&[("x-max-length-bytes", 12)]));
    for _ in 0..10 {
        f.publish(true); // "m0" … "m9": 2 bytes each
        f.commit();
    }
    assert_eq!(f.queue.message_count(), 6);
    assert_eq!(f.drain(), (4..10).collect::<Vec<_>>());
    f.commit();
    assert_eq!(f.stored_messages(), 0);
}

#[test]
fn a_restored_queue_gets_levels_sizes_and_expiries_from_its_index() {
    let mut f = Fixture::with_arguments(arguments(&[("x-max-priority", 9)]));
    let priorities = [0u8, 0, 0, 9, 9, 9, 5, 5, 0];
    let ids: Vec<u64> = priorities
        .iter()
        .map(|p| {
            f.message_with(true, with_priority(*p))
                .store_id
                .expect("stored")
        })
        .collect();
    f.commit();
    let now = epoch_ms();
    let mut expiries = vec![0; 9];
    expiries[8] = now - 1; // expired while the broker was down
    expiries[0] = now + 3_600_000;
    f.queue.restore(vec![IndexSegment {
        first_seq: 0,
        ids,
        sizes: vec![2; 9],
        priorities: priorities.to_vec(),
        expiries,
    }]);
    let split = f.split();
    assert_eq!(
        (split.paged_out, split.paged_out_bytes),
        (9, 18),
        "{split:?}"
    );
    std::thread::sleep(std::time::Duration::from_millis(5));
    let got: Vec<(u64, bool, u64)> = std::iter::from_fn(|| f.queue.get(true))
        .map(|(m, _)| (m.seq, m.redelivered, m.expires_at))
        .collect();
    // The expired one (8) went; the rest by priority, FIFO within each.
    let seqs: Vec<u64> = got.iter().map(|(seq, _, _)| *seq).collect();
    assert_eq!(seqs, vec![3, 4, 5, 6, 7, 0, 1, 2]);
    assert!(got.iter().all(|(_, redelivered, _)| *redelivered));
    let (_, _, expires_at) = got[5];
    assert!(
        expires_at > clock::now_ms() + 3_500_000,
        "message 0 keeps its expiry, on this clock"
    );
}
