//! A queue under policies (queue/settings.rs): RabbitMQ's precedence between its own
//! arguments, the policy and the operator policy, and what a policy change does to a queue that
//! already holds messages. End to end, through the management API and against the reference
//! broker: `tests/broker/management/policies.rs`.

use serde_json::{Value, json};

use crate::broker::policy::{self, PolicyKind, VhostPolicies};
use crate::broker::queue::test_support::*;
use crate::broker::vhost::VHost;

fn set(vhost: &VHost, policies: &[(&str, PolicyKind, Value)]) {
    let mut set = VhostPolicies::default();
    for (name, kind, body) in policies {
        set.put(std::sync::Arc::new(
            policy::parse("/", name, *kind, body).unwrap(),
        ));
    }
    vhost.set_policies(set);
}

fn limit(pattern: &str, definition: Value) -> Value {
    json!({"pattern": pattern, "definition": definition})
}

#[test]
fn the_lowest_limit_of_argument_policy_and_operator_policy_wins() {
    let vhost = vhost();
    let own = declare(
        &vhost,
        "own",
        &[("x-max-length", int(2)), ("x-message-ttl", int(500))],
    );
    let plain = declare(&vhost, "plain", &[]);
    set(
        &vhost,
        &[
            (
                "p",
                PolicyKind::Policy,
                limit(".*", json!({"max-length": 5, "message-ttl": 100})),
            ),
            (
                "op",
                PolicyKind::Operator,
                limit("^plain$", json!({"max-length": 3})),
            ),
        ],
    );
    let (own, plain) = (own.settings(), plain.settings());
    assert_eq!((own.max_length, own.message_ttl_ms), (Some(2), Some(100)));
    assert_eq!(
        (plain.max_length, plain.message_ttl_ms),
        (Some(3), Some(100))
    );
}

#[test]
fn the_queues_own_overflow_and_dead_letter_exchange_win_over_the_policys() {
    let vhost = vhost();
    let own = declare(
        &vhost,
        "own",
        &[
            ("x-overflow", text("reject-publish")),
            ("x-dead-letter-exchange", text("mine")),
        ],
    );
    let plain = declare(&vhost, "plain", &[]);
    let definition = json!({"overflow": "reject-publish-dlx", "dead-letter-exchange": "theirs",
                            "dead-letter-routing-key": "k"});
    set(
        &vhost,
        &[("p", PolicyKind::Policy, limit(".*", definition))],
    );
    let own = own.settings();
    let dlx = own.dead_letter.as_ref().unwrap();
    assert_eq!(
        own.overflow,
        crate::broker::queue::args::Overflow::RejectPublish
    );
    // The routing key is looked up on its own: the queue has none, the policy's applies.
    assert_eq!(
        (dlx.exchange.as_str(), dlx.routing_key.as_deref()),
        ("mine", Some("k"))
    );
    let plain = plain.settings();
    assert_eq!(
        plain.overflow,
        crate::broker::queue::args::Overflow::RejectPublishDlx
    );
    assert_eq!(plain.dead_letter.unwrap().exchange, "theirs");
    assert!(
        plain.pages,
        "a dead-lettering queue pages too (a paged dead letter is read when it leaves)"
    );
}

#[test]
fn a_lower_limit_sheds_a_drop_head_queues_excess_at_once_and_a_removed_one_lifts() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    let rejecting = declare(&vhost, "r", &[("x-overflow", text("reject-publish"))]);
    send_numbered(&vhost, "q", 0..6);
    send_numbered(&vhost, "r", 0..6);
    set(
        &vhost,
        &[(
            "p",
            PolicyKind::Policy,
            limit(".*", json!({"max-length": 2})),
        )],
    );
    assert_eq!(drain(&q), ["m4", "m5"]);
    // A reject-publish queue keeps what it has and refuses new messages (RabbitMQ's
    // maybe_drop_head drops only for drop-head).
    assert_eq!(rejecting.message_count(), 6);
    assert!(try_send(&vhost, "r", "more").rejected);
    set(&vhost, &[]);
    send_numbered(&vhost, "q", 0..4);
    assert_eq!(q.message_count(), 4);
    assert!(q.applied_policies().policy_name().is_none());
}
