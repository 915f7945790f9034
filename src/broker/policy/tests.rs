//! The policy model against what RabbitMQ 3.10 answered for the same bodies (asked of the
//! reference broker), matching by priority and apply-to, and the merge of policy and operator
//! policy.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;

fn parse_as(kind: PolicyKind, body: Value) -> Result<Policy, String> {
    parse("/", "p", kind, &body)
}

fn refused(kind: PolicyKind, definition: Value) -> String {
    parse_as(kind, json!({"pattern": ".*", "definition": definition})).unwrap_err()
}

#[test]
fn every_key_rabbitmq_accepts_in_a_policy_is_accepted() {
    for definition in [
        json!({"message-ttl": 0, "expires": 1000, "max-length": 0, "max-length-bytes": 100}),
        json!({"overflow": "reject-publish-dlx", "dead-letter-exchange": "dlx",
               "dead-letter-routing-key": "k", "queue-mode": "lazy", "alternate-exchange": "ae"}),
        json!({"delivery-limit": 3, "max-in-memory-length": 3, "max-in-memory-bytes": 3,
               "max-age": "1D", "stream-max-segment-size-bytes": 1000, "queue-version": 2}),
        json!({"queue-master-locator": "min-masters", "queue-leader-locator": "balanced",
               "initial-cluster-size": 3, "dead-letter-strategy": "at-least-once"}),
        json!({"ha-mode": "exactly", "ha-params": 2, "ha-sync-mode": "automatic"}),
        json!({"ha-mode": "nodes", "ha-params": ["a"]}),
        json!({"message-ttl": 4294967296u64}),
    ] {
        parse_as(
            PolicyKind::Policy,
            json!({"pattern": ".*", "definition": definition}),
        )
        .unwrap_or_else(|e| panic!("{definition} refused: {e}"));
    }
}

#[test]
fn refusals_carry_rabbitmqs_texts() {
    let policy = PolicyKind::Policy;
    let cases = [
        (
            json!({"max-length": -1}),
            "-1 is not a valid maximum length",
        ),
        (
            json!({"max-length": "x"}),
            "<<\"x\">> is not a valid maximum length",
        ),
        (
            json!({"message-ttl": 1.5}),
            "1.5 is not a valid message TTL",
        ),
        (json!({"expires": 0}), "0 is not a valid queue expiry"),
        (json!({"expires": true}), "true is not a valid queue expiry"),
        (
            json!({"max-length-bytes": -1}),
            "-1 is not a valid maximum length in bytes",
        ),
        (
            json!({"dead-letter-exchange": 5}),
            "5 is not a valid dead letter exchange name",
        ),
        (
            json!({"overflow": "bad"}),
            "<<\"bad\">> is not a valid overflow value",
        ),
        (
            json!({"queue-mode": "bad"}),
            "<<\"bad\">> is not a valid queue-mode value",
        ),
        (
            json!({"queue-version": 3}),
            "3 is not a valid queue-version value",
        ),
        (
            json!({"delivery-limit": -1}),
            "-1 is not a valid delivery limit",
        ),
        (
            json!({"max-in-memory-length": -1}),
            "-1 is not a valid maximum memory in bytes",
        ),
        (
            json!({"initial-cluster-size": "x"}),
            "<<\"x\">> is not a valid cluster size",
        ),
        (
            json!({"queue-master-locator": "bad"}),
            "<<\"bad\">> invalid queue-master-locator value",
        ),
        (
            json!({"ha-sync-mode": "automatic"}),
            "ha-mode must be specified to specify ha-params, ha-sync-mode or ha-promote-on-shutdown",
        ),
        (
            json!({"ha-mode": "all", "ha-params": 2}),
            "ha-mode=\"all\" does not take parameters",
        ),
        (
            json!({"ha-mode": "exactly"}),
            "ha-mode=\"exactly\" takes an integer, none given",
        ),
        (
            json!({"ha-mode": "all", "ha-sync-mode": "bad"}),
            "ha-sync-mode must be \"manual\" or \"automatic\", got <<\"bad\">>",
        ),
        (
            json!({"message-ttl": 1000, "foo": 1, "bar": 2}),
            "[{<<\"bar\">>,2},{<<\"foo\">>,1}] are not recognised policy settings",
        ),
        (
            json!({"single-active-consumer": true}),
            "[{<<\"single-active-consumer\">>,true}] are not recognised policy settings",
        ),
        (json!({}), "no policy provided"),
    ];
    for (definition, text) in cases {
        assert_eq!(
            refused(policy, definition.clone()),
            format!("Validation failed\n\n{text}\n"),
            "{definition}"
        );
    }
}

#[test]
fn operator_policies_take_only_the_numeric_limits() {
    for key in validate::OPERATOR_KEYS {
        parse_as(
            PolicyKind::Operator,
            json!({"pattern": ".*", "definition": {key: 5}}),
        )
        .unwrap_or_else(|e| panic!("{key}: {e}"));
    }
    assert_eq!(
        refused(PolicyKind::Operator, json!({"overflow": "drop-head"})),
        "Validation failed\n\n[{<<\"overflow\">>,<<\"drop-head\">>}] are not recognised policy settings\n"
    );
}

#[test]
fn the_body_is_checked_field_by_field() {
    let policy = PolicyKind::Policy;
    let err = |body: Value| parse_as(policy, body).unwrap_err();
    let d = json!({"message-ttl": 1});
    assert_eq!(err(json!({"definition": d})), "[{key_missing,pattern}]");
    assert_eq!(err(json!({"pattern": ".*"})), "[{key_missing,definition}]");
    assert_eq!(
        err(json!({"pattern": 5, "definition": d})),
        "Validation failed\n\npattern should be a binary but was 5\n"
    );
    assert!(
        err(json!({"pattern": "(", "definition": d})).starts_with(
            "Validation failed\n\npattern should be regular expression but is invalid"
        )
    );
    assert_eq!(
        err(json!({"pattern": ".*", "definition": d, "apply-to": "bad"})),
        "Validation failed\n\napply-to 'bad' unrecognised; should be 'queues', 'exchanges' or 'all'\n"
    );
    assert_eq!(
        err(json!({"pattern": ".*", "definition": d, "priority": "5"})),
        "Validation failed\n\npriority should be a number, actually was <<\"5\">>\n"
    );
    let p = parse_as(
        policy,
        json!({"pattern": "^q", "definition": d, "priority": 1.5}),
    )
    .unwrap();
    assert_eq!(p.apply_to, ApplyTo::All);
    assert_eq!(p.to_json()["priority"], json!(1.5));
}

fn policy(name: &str, kind: PolicyKind, body: Value) -> Arc<Policy> {
    Arc::new(parse("/", name, kind, &body).unwrap())
}

#[test]
fn the_matching_policy_of_highest_priority_applies_to_its_kind_of_object() {
    let mut set = VhostPolicies::default();
    set.put(policy(
        "low",
        PolicyKind::Policy,
        json!({"pattern": "^orders", "definition": {"max-length": 10}, "priority": 1}),
    ));
    set.put(policy(
        "high",
        PolicyKind::Policy,
        json!({"pattern": "orders", "definition": {"max-length": 20}, "priority": 5}),
    ));
    set.put(policy(
        "ex",
        PolicyKind::Policy,
        json!({"pattern": ".*", "definition": {"alternate-exchange": "ae"},
               "apply-to": "exchanges", "priority": 9}),
    ));
    let applied = set.applied(Target::Queue, "orders.eu");
    assert_eq!(applied.policy_name(), Some("high"));
    assert_eq!(applied.queue_values().max_length, Some(20));
    assert_eq!(set.applied(Target::Queue, "other").policy_name(), None);
    assert_eq!(
        set.applied(Target::Exchange, "orders").policy_name(),
        Some("ex")
    );
    assert_eq!(
        set.applied(Target::Exchange, "x")
            .alternate_exchange()
            .as_deref(),
        Some("ae")
    );
    set.remove(PolicyKind::Policy, "high");
    assert_eq!(
        set.applied(Target::Queue, "orders").policy_name(),
        Some("low")
    );
}

#[test]
fn an_operator_policy_merges_in_and_the_lower_limit_wins() {
    let mut set = VhostPolicies::default();
    set.put(policy(
        "pp",
        PolicyKind::Policy,
        json!({"pattern": "^pq",
        "definition": {"max-length": 10, "message-ttl": 5000, "dead-letter-exchange": "dlx"}}),
    ));
    set.put(policy(
        "op",
        PolicyKind::Operator,
        json!({"pattern": "^pq",
        "definition": {"max-length": 5, "expires": 100000, "message-ttl": 9000}}),
    ));
    let applied = set.applied(Target::Queue, "pq1");
    assert_eq!(applied.policy_name(), Some("pp"));
    assert_eq!(applied.operator_name(), Some("op"));
    assert_eq!(
        Value::Object(applied.definition.clone()),
        json!({"dead-letter-exchange": "dlx", "expires": 100000, "max-length": 5,
               "message-ttl": 5000})
    );
}
