use std::sync::Arc;

use super::*;
use crate::broker::message::Message;
use crate::store::SEGMENT_CAPACITY;

fn message(seq: u64) -> QueuedMessage {
    let message = Arc::new(Message {
        exchange: Arc::from(""),
        routing_key: Default::default(),
        properties: Default::default(),
        body: bytes::Bytes::from_static(b"0123456789"),
        store_id: None,
    });
    QueuedMessage::new(seq, message, false)
}

fn paged(seq: u64, id: u64) -> PagedRef {
    PagedRef {
        seq,
        id,
        size: 10,
        expires_at: 0,
        delivery_count: 0,
        redelivered: false,
        spilled: false,
    }
}

fn push(b: &mut Backlog, level: usize, seq: u64, id: u64, durable_at: u64) {
    b.push(level, message(seq), paged(seq, id), durable_at);
}

fn seqs(taken: &[Taken]) -> Vec<(u64, bool)> {
    taken
        .iter()
        .map(|t| match t {
            Taken::Paged(r) => (r.seq, true),
            Taken::InMemory(m, _) => (m.seq, false),
        })
        .collect()
}

#[test]
fn applied_messages_drop_their_bodies_and_keep_fifo_order() {
    let mut b = Backlog::new(0);
    let n = SEGMENT_CAPACITY as u64 + 100;
    for seq in 0..n {
        // Interleaved ids, as with several publishers.
        push(&mut b, 0, seq, 1000 + seq * 3, seq + 1);
    }
    b.settle(400); // only ops 1..=400 applied
    assert_eq!(b.in_memory(), (n - 400, (n - 400) * 10));
    assert_eq!(b.paged_out(), (400, 4000));
    b.settle(u64::MAX);
    assert_eq!(b.levels[0].settled.len(), 2, "two runs");
    assert_eq!((b.len(), b.bytes()), (n, n * 10));
    let mut taken = Vec::new();
    b.take_front(0, 998, &mut taken);
    b.take_front(0, n as usize, &mut taken);
    let got = seqs(&taken);
    assert!(
        got.iter()
            .enumerate()
            .all(|(i, (seq, paged))| *seq == i as u64 && *paged)
    );
    match &taken[5] {
        Taken::Paged(r) => assert_eq!(r.id, 1000 + 15),
        _ => panic!(),
    }
    assert!(b.is_empty() && b.bytes() == 0);
}

#[test]
fn unapplied_messages_come_back_from_memory() {
    let mut b = Backlog::new(0);
    push(&mut b, 0, 7, 1, 99);
    b.settle(5);
    let mut taken = Vec::new();
    b.take_front(0, 10, &mut taken);
    assert_eq!(seqs(&taken), vec![(7, false)]);
    assert_eq!(b.in_memory(), (0, 0));
}

#[test]
fn levels_are_separate_fifos_and_the_top_one_is_known() {
    let mut b = Backlog::new(9);
    push(&mut b, 2, 0, 10, 1);
    push(&mut b, 9, 1, 11, 1);
    push(&mut b, 2, 2, 12, 1);
    push(&mut b, 42, 3, 13, 1); // above the maximum: the top level
    b.settle(1);
    assert_eq!(b.top_level(), Some(9));
    let mut taken = Vec::new();
    b.take_front(9, 10, &mut taken);
    assert_eq!(seqs(&taken), vec![(1, true), (3, true)]);
    assert_eq!(b.top_level(), Some(2));
    taken.clear();
    b.take_front(2, 10, &mut taken);
    assert_eq!(seqs(&taken), vec![(0, true), (2, true)]);
    assert_eq!(b.top_level(), None);
}

#[test]
fn to_read_looks_at_paged_messages_only_and_take_through_takes_what_is_left_of_them() {
    let mut b = Backlog::new(0);
    for seq in 0..6 {
        push(&mut b, 0, seq, 100 + seq, 1);
    }
    push(&mut b, 0, 6, 106, 2); // not applied yet
    b.settle(1);
    let mut refs = Vec::new();
    assert_eq!(b.to_read(0, 4, &mut refs), Some(3));
    assert_eq!(
        refs.iter().map(|r| r.id).collect::<Vec<_>>(),
        [100, 101, 102, 103]
    );
    refs.clear();
    assert_eq!(
        b.to_read(0, 100, &mut refs),
        Some(5),
        "stops before the pending one"
    );
    assert_eq!(b.len(), 7, "looking takes nothing");
    // Meanwhile the head went (x-max-length drop-head) and more arrived behind.
    let mut taken = Vec::new();
    b.take_front(0, 2, &mut taken);
    push(&mut b, 0, 7, 107, 2);
    b.settle(2);
    taken.clear();
    b.take_front_through(0, 5, &mut taken);
    assert_eq!(
        seqs(&taken),
        vec![(2, true), (3, true), (4, true), (5, true)]
    );
    assert_eq!(b.len(), 2);
}

#[test]
fn nothing_to_read_when_the_front_is_in_memory() {
    let mut b = Backlog::new(0);
    push(&mut b, 0, 0, 1, 5);
    b.settle(4);
    assert_eq!(b.to_read(0, 10, &mut Vec::new()), None);
}

#[test]
fn drain_hands_back_only_what_was_not_taken() {
    let mut b = Backlog::new(0);
    for seq in 0..10 {
        push(&mut b, 0, seq, seq, 1);
    }
    b.settle(1);
    push(&mut b, 0, 10, 10, 2);
    let mut taken = Vec::new();
    b.take_front(0, 4, &mut taken);
    let (mut runs, mut in_memory) = (Vec::new(), Vec::new());
    b.drain(|d| match d {
        Drained::Paged(run) => runs.extend(run.iter().map(|r| r.seq)),
        Drained::InMemory(m, _) => in_memory.push(m.seq),
    });
    assert_eq!(runs, (4..10).collect::<Vec<_>>());
    assert_eq!(in_memory, vec![10]);
    assert!(b.is_empty() && b.bytes() == 0 && b.in_memory() == (0, 0));
}
