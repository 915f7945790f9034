//! [`QueueSettings::new`] for quorum queues' dead-letter strategy and overflow, as RabbitMQ
//! 3.10's `rabbit_quorum_queue` reads them (the argument parse of `x-dead-letter-strategy`
//! too).

use amq_protocol::types::{AMQPValue, FieldTable, LongString};

use super::*;
use crate::broker::policy::QueuePolicyValues;

const WHAT: &str = "queue 'q' in vhost '/'";

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

fn args(entries: &[(&str, &str)]) -> Result<QueueArguments, String> {
    let mut t = FieldTable::default();
    for (key, v) in entries {
        t.insert((*key).into(), text(v));
    }
    QueueArguments::parse(t, WHAT).map_err(|e| e.text)
}

fn quorum(entries: &[(&str, &str)]) -> QueueArguments {
    let mut all = vec![("x-queue-type", "quorum")];
    all.extend_from_slice(entries);
    args(&all).expect("accepted")
}

fn policy(overflow: Option<&str>, strategy: Option<&str>) -> QueuePolicyValues {
    QueuePolicyValues {
        overflow: overflow.map(str::to_string),
        dead_letter_strategy: strategy.map(str::to_string),
        ..QueuePolicyValues::default()
    }
}

#[test]
fn x_dead_letter_strategy_is_read_for_quorum_queues_and_refused_for_classic_ones() {
    assert_eq!(
        quorum(&[("x-dead-letter-strategy", "at-least-once")]).dead_letter_strategy,
        Some(DeadLetterStrategy::AtLeastOnce)
    );
    assert_eq!(
        args(&[("x-queue-type", "quorum"), ("x-dead-letter-strategy", "")]).unwrap_err(),
        format!(
            "PRECONDITION_FAILED - invalid arg 'x-dead-letter-strategy' for {WHAT}: invalid_dlx_strategy"
        )
    );
    // A classic queue does not check the value: it refuses the key.
    assert_eq!(
        args(&[("x-dead-letter-strategy", "bogus")]).unwrap_err(),
        format!(
            "PRECONDITION_FAILED - invalid arg 'x-dead-letter-strategy' for {WHAT} of queue type rabbit_classic_queue"
        )
    );
}

#[test]
fn at_least_once_needs_reject_publish_and_a_dead_letter_exchange() {
    let none = QueuePolicyValues::default();
    let full = [
        ("x-dead-letter-exchange", "dlx"),
        ("x-dead-letter-strategy", "at-least-once"),
        ("x-overflow", "reject-publish"),
    ];
    assert!(QueueSettings::new(&quorum(&full), &none).at_least_once);
    for missing in 0..full.len() {
        let mut some = full.to_vec();
        some.remove(missing);
        assert!(
            !QueueSettings::new(&quorum(&some), &none).at_least_once,
            "without {}",
            full[missing].0
        );
    }
    let dlx_only = quorum(&[("x-dead-letter-exchange", "dlx")]);
    assert!(
        QueueSettings::new(
            &dlx_only,
            &policy(Some("reject-publish"), Some("at-least-once"))
        )
        .at_least_once
    );
}

#[test]
fn a_quorum_queue_takes_the_policy_overflow_and_the_argument_strategy() {
    let declared = quorum(&[
        ("x-dead-letter-exchange", "dlx"),
        ("x-dead-letter-strategy", "at-most-once"),
        ("x-overflow", "drop-head"),
    ]);
    let settings = QueueSettings::new(
        &declared,
        &policy(Some("reject-publish"), Some("at-least-once")),
    );
    assert_eq!(settings.overflow, Overflow::RejectPublish);
    assert_eq!(
        settings.dead_letter_strategy,
        DeadLetterStrategy::AtMostOnce
    );
    assert!(!settings.at_least_once);
    // A classic queue keeps its argument.
    let classic = args(&[("x-overflow", "drop-head")]).unwrap();
    let settings = QueueSettings::new(&classic, &policy(Some("reject-publish"), None));
    assert_eq!(settings.overflow, Overflow::DropHead);
}

#[test]
fn reject_publish_dlx_is_drop_head_for_a_quorum_queue_only() {
    let none = QueuePolicyValues::default();
    let q = quorum(&[("x-overflow", "reject-publish-dlx")]);
    assert_eq!(QueueSettings::new(&q, &none).overflow, Overflow::DropHead);
    let c = args(&[("x-overflow", "reject-publish-dlx")]).unwrap();
    assert_eq!(
        QueueSettings::new(&c, &none).overflow,
        Overflow::RejectPublishDlx
    );
}
