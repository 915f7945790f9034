use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

const NODE: u64 = 1;

/// Each test message weighs one byte.
impl Weigh for u32 {
    fn bytes(&self) -> u64 {
        1
    }
}

fn key(node: u64, id: u64) -> ConsumerKey {
    ConsumerKey {
        node,
        incarnation: 7,
        id,
    }
}

struct Driver {
    machine: QueueMachine<u32>,
    seq: u64,
    delivered: Vec<Delivery<u32>>,
}

impl Driver {
    fn new() -> Self {
        Driver {
            machine: QueueMachine::default(),
            seq: 0,
            delivered: Vec::new(),
        }
    }

    fn run(&mut self, commands: Vec<Command<u32>>) -> Vec<Reply<u32>> {
        self.seq += 1;
        let batch = Batch {
            proposer: Proposer {
                node: NODE,
                incarnation: 1,
            },
            seq: self.seq,
            commands,
        };
        let mut out = Vec::new();
        let replies = self.machine.apply(batch, &mut out);
        self.delivered.extend(out);
        replies
    }

    fn take(&mut self) -> Vec<(ConsumerKey, u64, u32)> {
        self.delivered
            .drain(..)
            .map(|d| (d.consumer, d.id, d.delivery_count))
            .collect()
    }
}

fn checkout(consumer: ConsumerKey, prefetch: u32) -> Command<u32> {
    Command::Checkout {
        consumer,
        prefetch,
        no_ack: false,
        priority: 0,
    }
}

#[test]
fn messages_go_round_robin_within_prefetch() {
    let mut d = Driver::new();
    d.run(vec![checkout(key(1, 1), 2), checkout(key(2, 1), 1)]);
    d.run((0..5).map(Command::Enqueue).collect());
    let got = d.take();
    assert_eq!(
        got,
        vec![(key(1, 1), 1, 0), (key(2, 1), 2, 0), (key(1, 1), 3, 0)]
    );
    assert_eq!(d.machine.ready_count(), 2);
    assert_eq!(d.machine.unacked_count(), 3);
    // An ack frees credit: the next ready message goes out.
    d.run(vec![Command::Settle {
        consumer: key(2, 1),
        ids: vec![2],
    }]);
    assert_eq!(d.take(), vec![(key(2, 1), 4, 0)]);
}

#[test]
fn the_highest_priority_consumer_with_credit_is_served_first() {
    let mut d = Driver::new();
    let high = Command::Checkout {
        consumer: key(2, 1),
        prefetch: 2,
        no_ack: false,
        priority: 10,
    };
    d.run(vec![checkout(key(1, 1), 0), high]);
    d.run((0..4).map(Command::Enqueue).collect());
    let got: Vec<ConsumerKey> = d.take().into_iter().map(|(c, _, _)| c).collect();
    // The high one until its prefetch is full, then the low one.
    assert_eq!(got, vec![key(2, 1), key(2, 1), key(1, 1), key(1, 1)]);
}

#[test]
fn a_length_limit_drops_the_head_or_refuses_the_publish() {
    let mut d = Driver::new();
    let limits = Limits {
        max_length: Some(2),
        ..Limits::default()
    };
    d.run(vec![Command::Configure(limits.clone())]);
    d.run((1..=3).map(Command::Enqueue).collect());
    let get = ConsumerKey {
        node: 1,
        incarnation: 7,
        id: GET_CONSUMER,
    };
    let dequeue = || Command::Dequeue {
        consumer: get,
        no_ack: true,
    };
    let replies = d.run(vec![dequeue(), dequeue(), dequeue()]);
    assert_eq!(
        replies,
        vec![
            Reply::Got(Some((2, 0, 2)), 1),
            Reply::Got(Some((3, 0, 3)), 0),
            Reply::Got(None, 0)
        ],
        "the oldest went"
    );
    d.run(vec![Command::Configure(Limits {
        reject_publish: true,
        max_bytes: Some(1),
        ..limits
    })]);
    let replies = d.run(vec![Command::Enqueue(4), Command::Enqueue(5)]);
    assert_eq!(replies, vec![Reply::Done, Reply::Rejected]);
    assert_eq!(d.machine.ready_count(), 1);
}

#[test]
fn past_the_delivery_limit_a_returned_message_leaves() {
    let mut d = Driver::new();
    d.run(vec![
        Command::Configure(Limits {
            delivery_limit: Some(1),
            ..Limits::default()
        }),
        checkout(key(1, 1), 1),
        Command::Enqueue(1),
    ]);
    for expected_count in [0, 1] {
        assert_eq!(d.take(), vec![(key(1, 1), 1, expected_count)]);
        d.run(vec![Command::Return {
            consumer: key(1, 1),
            ids: vec![1],
        }]);
    }
    assert!(d.take().is_empty(), "returned twice: gone");
    assert_eq!((d.machine.ready_count(), d.machine.unacked_count()), (0, 0));
}

#[test]
fn a_single_active_consumer_gets_everything_until_it_goes() {
    let mut d = Driver::new();
    d.run(vec![
        Command::Configure(Limits {
            single_active: true,
            ..Limits::default()
        }),
        checkout(key(1, 1), 0),
        checkout(key(2, 1), 0),
    ]);
    d.run((1..=3).map(Command::Enqueue).collect());
    let to: Vec<ConsumerKey> = d.take().into_iter().map(|(c, _, _)| c).collect();
    assert_eq!(to, vec![key(1, 1); 3]);
    d.run(vec![
        Command::Cancel {
            consumer: key(1, 1),
        },
        Command::Enqueue(4),
    ]);
    assert_eq!(d.take(), vec![(key(2, 1), 4, 0)]);
}

#[test]
fn a_returned_message_comes_back_with_one_more_delivery() {
    let mut d = Driver::new();
    d.run(vec![checkout(key(1, 1), 1), Command::Enqueue(10)]);
    assert_eq!(d.take(), vec![(key(1, 1), 1, 0)]);
    d.run(vec![Command::Return {
        consumer: key(1, 1),
        ids: vec![1],
    }]);
    assert_eq!(d.take(), vec![(key(1, 1), 1, 1)]);
}

#[test]
fn a_cancelled_consumer_keeps_what_it_holds_until_settled() {
    let mut d = Driver::new();
    d.run(vec![checkout(key(1, 1), 0), Command::Enqueue(1)]);
    d.take();
    d.run(vec![Command::Cancel {
        consumer: key(1, 1),
    }]);
    d.run(vec![Command::Enqueue(2)]);
    assert!(d.take().is_empty(), "nothing for a cancelled consumer");
    assert_eq!(d.machine.unacked_count(), 1);
    d.run(vec![Command::Settle {
        consumer: key(1, 1),
        ids: vec![1],
    }]);
    assert!(!d.machine.has_consumer(&key(1, 1)));
    assert_eq!((d.machine.ready_count(), d.machine.unacked_count()), (1, 0));
}

#[test]
fn a_node_down_returns_what_its_consumers_held_but_not_its_new_incarnation() {
    let mut d = Driver::new();
    let new_life = ConsumerKey {
        node: 2,
        incarnation: 8,
        id: 1,
    };
    d.run(vec![checkout(key(2, 1), 1), checkout(new_life, 1)]);
    d.run(vec![Command::Enqueue(1), Command::Enqueue(2)]);
    d.take();
    d.run(vec![
        Command::NodeDown {
            node: 2,
            keep_incarnation: 8,
        },
        checkout(key(3, 1), 5),
    ]);
    assert_eq!(d.take(), vec![(key(3, 1), 1, 1)], "redelivered elsewhere");
    assert!(d.machine.has_consumer(&new_life));
    assert!(!d.machine.has_consumer(&key(2, 1)));
}

#[test]
fn a_batch_seen_before_is_skipped() {
    let mut d = Driver::new();
    d.run(vec![Command::Enqueue(1)]);
    let again = Batch {
        proposer: Proposer {
            node: NODE,
            incarnation: 1,
        },
        seq: d.seq,
        commands: vec![Command::Enqueue(1)],
    };
    let replies = d.machine.apply(again, &mut Vec::new());
    assert_eq!(replies, vec![Reply::Done]);
    assert_eq!(d.machine.ready_count(), 1, "enqueued once");
}

#[test]
fn dequeue_and_purge_answer_their_proposer() {
    let mut d = Driver::new();
    d.run((0..3).map(Command::Enqueue).collect());
    let get = ConsumerKey {
        node: 1,
        incarnation: 7,
        id: GET_CONSUMER,
    };
    let replies = d.run(vec![
        Command::Dequeue {
            consumer: get,
            no_ack: false,
        },
        Command::Purge,
    ]);
    assert_eq!(
        replies,
        vec![Reply::Got(Some((1, 0, 0)), 2), Reply::Purged(2)]
    );
    assert_eq!(d.machine.unacked_count(), 1);
    d.run(vec![Command::Settle {
        consumer: get,
        ids: vec![1],
    }]);
    assert_eq!(d.machine.unacked_count(), 0);
}

/// One step of a random run.
#[derive(Debug, Clone)]
enum Step {
    Publish(u8),
    Consume { consumer: u8, prefetch: u8 },
    Cancel(u8),
    Ack { consumer: u8, pick: u8 },
    Nack { consumer: u8, pick: u8 },
    NodeDown(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1..5u8).prop_map(Step::Publish),
        (0..4u8, 0..4u8).prop_map(|(consumer, prefetch)| Step::Consume { consumer, prefetch }),
        (0..4u8).prop_map(Step::Cancel),
        (0..4u8, any::<u8>()).prop_map(|(consumer, pick)| Step::Ack { consumer, pick }),
        (0..4u8, any::<u8>()).prop_map(|(consumer, pick)| Step::Nack { consumer, pick }),
        (1..3u8).prop_map(Step::NodeDown),
    ]
}

fn consumer_key(c: u8) -> ConsumerKey {
    key(1 + u64::from(c % 2), u64::from(c) + 1)
}

proptest! {
    /// Whatever happens, every message is either ready or held by exactly one consumer,
    /// nobody holds more than its prefetch, an acked message never comes back, and a message
    /// delivered again says so.
    #[test]
    fn the_queue_keeps_its_promises(steps in proptest::collection::vec(step(), 1..80)) {
        let mut d = Driver::new();
        let mut published = 0u32;
        let mut held: BTreeMap<ConsumerKey, BTreeSet<u64>> = BTreeMap::new();
        let mut prefetch: BTreeMap<ConsumerKey, u32> = BTreeMap::new();
        let mut acked = BTreeSet::new();
        let mut seen = BTreeSet::new();
        for step in steps {
            let command = match step {
                Step::Publish(n) => {
                    let commands = (0..n).map(|_| { published += 1; Command::Enqueue(published) }).collect();
                    d.run(commands);
                    None
                }
                Step::Consume { consumer, prefetch: p } => {
                    prefetch.insert(consumer_key(consumer), u32::from(p));
                    Some(checkout(consumer_key(consumer), u32::from(p)))
                }
                Step::Cancel(c) => Some(Command::Cancel { consumer: consumer_key(c) }),
                Step::Ack { consumer, pick } | Step::Nack { consumer, pick } => {
                    let k = consumer_key(consumer);
                    let ids: Vec<u64> = held.get(&k).into_iter().flatten().copied().collect();
                    if ids.is_empty() { continue; }
                    let id = ids[pick as usize % ids.len()];
                    held.entry(k).or_default().remove(&id);
                    if matches!(step, Step::Ack { .. }) {
                        acked.insert(id);
                        Some(Command::Settle { consumer: k, ids: vec![id] })
                    } else {
                        Some(Command::Return { consumer: k, ids: vec![id] })
                    }
                }
                Step::NodeDown(node) => {
                    held.retain(|k, _| k.node != u64::from(node));
                    prefetch.retain(|k, _| k.node != u64::from(node));
                    Some(Command::NodeDown { node: u64::from(node), keep_incarnation: 0 })
                }
            };
            if let Some(command) = command {
                d.run(vec![command]);
            }
            for (consumer, id, count) in d.take() {
                prop_assert!(!acked.contains(&id), "acked message {} delivered again", id);
                prop_assert_eq!(count > 0, seen.contains(&id), "message {} redelivery flag", id);
                seen.insert(id);
                let ids = held.entry(consumer).or_default();
                ids.insert(id);
                let p = prefetch.get(&consumer).copied().unwrap_or(0);
                prop_assert!(p == 0 || ids.len() <= p as usize, "{:?} holds {} over {}", consumer, ids.len(), p);
            }
            let holding: usize = held.values().map(BTreeSet::len).sum();
            prop_assert_eq!(holding as u32, d.machine.unacked_count());
            prop_assert_eq!(
                d.machine.ready_count() as usize + holding + acked.len(),
                published as usize,
                "every message ready, held or acked"
            );
        }
    }
}
