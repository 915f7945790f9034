//! Routing through a vhost, published as a client would ([`VHost::publish`]) and read back from
//! the queues: the default exchange, direct, fanout, topic and headers exchanges (their
//! matchers have their own unit tests; these check the path from publish to queue),
//! exchange-to-exchange bindings and their cycles, internal exchanges, and alternate exchanges.

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::AMQPValue;

use super::VHost;
use crate::broker::exchange::{Binding, Destination, ExchangeKind, ExchangeOptions};
use crate::broker::queue::test_support::*;

fn plain() -> BasicProperties {
    BasicProperties::default()
}

fn binding(destination: Destination, key: &str, arguments: &[(&str, AMQPValue)]) -> Binding {
    Binding {
        destination,
        routing_key: key.to_string(),
        arguments: table(arguments),
    }
}

/// queue.bind with binding arguments (headers exchanges).
fn bind_args(vhost: &VHost, exchange: &str, queue: &str, arguments: &[(&str, AMQPValue)]) {
    let binding = binding(Destination::Queue(queue.into()), "", arguments);
    vhost.bind(exchange, binding, CONNECTION).unwrap();
}

/// queue.unbind.
fn unbind(vhost: &VHost, exchange: &str, queue: &str, key: &str) {
    let binding = binding(Destination::Queue(queue.into()), key, &[]);
    vhost.unbind(exchange, &binding, CONNECTION).unwrap();
}

/// exchange.bind: what `source` routes by `key` goes on to `destination`.
fn bind_exchange(vhost: &VHost, destination: &str, source: &str, key: &str) {
    let binding = binding(Destination::Exchange(destination.into()), key, &[]);
    vhost.bind(source, binding, CONNECTION).unwrap();
}

/// exchange.unbind.
fn unbind_exchange(vhost: &VHost, destination: &str, source: &str, key: &str) {
    let binding = binding(Destination::Exchange(destination.into()), key, &[]);
    vhost.unbind(source, &binding, CONNECTION).unwrap();
}

/// Publishes each key with the key as the body.
fn publish_keys(vhost: &VHost, exchange: &str, keys: &[&str]) {
    for key in keys {
        publish(vhost, exchange, key, key, plain());
    }
}

#[test]
fn the_default_exchange_routes_to_the_queue_named_by_the_routing_key() {
    let vhost = vhost();
    let a = declare(&vhost, "a", &[]);
    let b = declare(&vhost, "b", &[]);
    assert_eq!(publish(&vhost, "", "a", "to-a", plain()), 1);
    assert_eq!(publish(&vhost, "", "nowhere", "lost", plain()), 0);
    assert_eq!(drain(&a), ["to-a"]);
    assert!(drain(&b).is_empty());
}

#[test]
fn an_unroutable_mandatory_message_is_returned() {
    let vhost = vhost();
    declare_exchange(&vhost, "x", ExchangeKind::Direct, &[]);
    let outcome = publish_request(&vhost, "x", "k", "back", plain(), true);
    assert_eq!(outcome.routed, 0);
    let returned = outcome.returned.expect("returned");
    assert_eq!(
        (returned.exchange.as_str(), returned.routing_key.as_str()),
        ("x", "k")
    );
    assert_eq!(&returned.body[..], b"back");
}

#[test]
fn a_direct_exchange_routes_on_the_exact_routing_key() {
    let vhost = vhost();
    declare_exchange(&vhost, "x", ExchangeKind::Direct, &[]);
    let qa = declare(&vhost, "qa", &[]);
    let qb = declare(&vhost, "qb", &[]);
    bind(&vhost, "x", "qa", "a");
    bind(&vhost, "x", "qb", "b");
    bind(&vhost, "x", "qb", "c");
    publish_keys(&vhost, "x", &["a", "b", "c", "d", "A", "a.b", ""]);
    assert_eq!(drain(&qa), ["a"]);
    assert_eq!(drain(&qb), ["b", "c"]);
}

#[test]
fn a_direct_binding_shared_by_two_queues_delivers_to_both() {
    let vhost = vhost();
    let q1 = declare(&vhost, "q1", &[]);
    let q2 = declare(&vhost, "q2", &[]);
    bind(&vhost, "amq.direct", "q1", "k");
    bind(&vhost, "amq.direct", "q2", "k");
    assert_eq!(publish(&vhost, "amq.direct", "k", "both", plain()), 2);
    assert_eq!(
        (drain(&q1), drain(&q2)),
        (vec!["both".to_string()], vec!["both".to_string()])
    );
}

#[test]
fn a_fanout_exchange_ignores_the_routing_key() {
    let vhost = vhost();
    declare_exchange(&vhost, "f", ExchangeKind::Fanout, &[]);
    let q1 = declare(&vhost, "q1", &[]);
    let q2 = declare(&vhost, "q2", &[]);
    bind(&vhost, "f", "q1", "");
    bind(&vhost, "f", "q2", "whatever");
    publish(&vhost, "f", "anything", "1", plain());
    publish(&vhost, "f", "", "2", plain());
    assert_eq!(drain(&q1), ["1", "2"]);
    assert_eq!(drain(&q2), ["1", "2"]);
}

#[test]
fn a_topic_exchange_matches_star_and_hash_wildcards() {
    let vhost = vhost();
    declare_exchange(&vhost, "t", ExchangeKind::Topic, &[]);
    let patterns = ["*.orange.*", "*.*.rabbit", "lazy.#", "#", "*", "a.#.b"];
    let queues: Vec<_> = patterns
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let name = format!("t{i}");
            let q = declare(&vhost, &name, &[]);
            bind(&vhost, "t", &name, p);
            q
        })
        .collect();
    let keys = [
        "quick.orange.rabbit",
        "lazy.orange.elephant",
        "lazy.brown.fox",
        "lazy",
        "orange",
        "quick.orange.male.rabbit",
        "a.b",
        "a.x.y.b",
        "",
    ];
    publish_keys(&vhost, "t", &keys);
    let expected: [&[&str]; 6] = [
        &["quick.orange.rabbit", "lazy.orange.elephant"],
        &["quick.orange.rabbit"],
        &["lazy.orange.elephant", "lazy.brown.fox", "lazy"],
        &keys,
        // An empty routing key has no words: "*" does not match it, "#" does.
        &["lazy", "orange"],
        &["a.b", "a.x.y.b"],
    ];
    for ((p, q), want) in patterns.iter().zip(&queues).zip(expected) {
        assert_eq!(drain(q), want, "pattern {p:?}");
    }
}

#[test]
fn a_message_matching_two_bindings_of_one_queue_is_enqueued_once() {
    let vhost = vhost();
    declare_exchange(&vhost, "t", ExchangeKind::Topic, &[]);
    let q = declare(&vhost, "q", &[]);
    bind(&vhost, "t", "q", "a.*");
    bind(&vhost, "t", "q", "#");
    bind(&vhost, "t", "q", "#");
    assert_eq!(publish(&vhost, "t", "a.b", "once", plain()), 1);
    assert_eq!(drain(&q), ["once"]);
}

#[test]
fn a_headers_exchange_matches_all_or_any_of_the_binding_arguments() {
    let vhost = vhost();
    declare_exchange(&vhost, "h", ExchangeKind::Headers, &[]);
    let all = declare(&vhost, "all", &[]);
    let any = declare(&vhost, "any", &[]);
    let report = [("format", text("pdf")), ("type", text("report"))];
    bind_args(
        &vhost,
        "h",
        "all",
        &[&[("x-match", text("all"))][..], &report].concat(),
    );
    bind_args(
        &vhost,
        "h",
        "any",
        &[&[("x-match", text("any"))][..], &report].concat(),
    );
    let messages: [(&str, Vec<(&str, AMQPValue)>); 4] = [
        (
            "pdf-report",
            vec![("format", text("pdf")), ("type", text("report"))],
        ),
        (
            "pdf-log",
            vec![("format", text("pdf")), ("type", text("log"))],
        ),
        ("zip", vec![("format", text("zip"))]),
        ("none", vec![]),
    ];
    for (b, headers) in &messages {
        let props = plain().with_headers(table(headers));
        publish(&vhost, "h", "k", b, props);
    }
    publish(&vhost, "h", "k", "no-table", plain());
    assert_eq!(drain(&all), ["pdf-report"]);
    assert_eq!(drain(&any), ["pdf-report", "pdf-log"]);
}

#[test]
fn an_exchange_to_exchange_binding_routes_until_it_is_unbound() {
    let vhost = vhost();
    declare_exchange(&vhost, "src", ExchangeKind::Topic, &[]);
    declare_exchange(&vhost, "dst", ExchangeKind::Fanout, &[]);
    let q = declare(&vhost, "q", &[]);
    bind(&vhost, "dst", "q", "");
    bind_exchange(&vhost, "dst", "src", "news.*");
    publish(&vhost, "src", "news.today", "routed", plain());
    publish(&vhost, "src", "sport.today", "filtered", plain());
    assert_eq!(drain(&q), ["routed"]);
    unbind_exchange(&vhost, "dst", "src", "news.*");
    assert_eq!(publish(&vhost, "src", "news.today", "after", plain()), 0);
    assert!(drain(&q).is_empty());
}

#[test]
fn a_chain_of_exchanges_reaches_every_queue_once() {
    let vhost = vhost();
    for x in ["a", "b", "c"] {
        declare_exchange(&vhost, x, ExchangeKind::Fanout, &[]);
    }
    bind_exchange(&vhost, "b", "a", "");
    bind_exchange(&vhost, "c", "b", "");
    // Also straight from a to c: c's queue is still reached once.
    bind_exchange(&vhost, "c", "a", "");
    let qa = declare(&vhost, "qa", &[]);
    let qc = declare(&vhost, "qc", &[]);
    bind(&vhost, "a", "qa", "");
    bind(&vhost, "c", "qc", "");
    bind(&vhost, "b", "qc", "");
    assert_eq!(publish(&vhost, "a", "", "m", plain()), 2);
    assert_eq!(drain(&qa), ["m"]);
    assert_eq!(drain(&qc), ["m"]);
}

#[test]
fn an_exchange_binding_cycle_delivers_each_message_once_per_queue() {
    let vhost = vhost();
    declare_exchange(&vhost, "a", ExchangeKind::Fanout, &[]);
    declare_exchange(&vhost, "b", ExchangeKind::Fanout, &[]);
    bind_exchange(&vhost, "b", "a", "");
    bind_exchange(&vhost, "a", "b", "");
    let qa = declare(&vhost, "qa", &[]);
    let qb = declare(&vhost, "qb", &[]);
    bind(&vhost, "a", "qa", "");
    bind(&vhost, "b", "qb", "");
    assert_eq!(publish(&vhost, "a", "", "m", plain()), 2);
    assert_eq!(drain(&qa), ["m"]);
    assert_eq!(drain(&qb), ["m"]);
}

#[test]
fn an_internal_exchange_receives_through_an_exchange_binding() {
    let vhost = vhost();
    let options = ExchangeOptions {
        kind: ExchangeKind::Fanout,
        durable: false,
        auto_delete: false,
        internal: true,
        arguments: Default::default(),
    };
    vhost.declare_exchange("internal", options, false).unwrap();
    declare_exchange(&vhost, "front", ExchangeKind::Fanout, &[]);
    bind_exchange(&vhost, "internal", "front", "");
    let q = declare(&vhost, "q", &[]);
    bind(&vhost, "internal", "q", "");
    publish(&vhost, "front", "", "via-front", plain());
    assert_eq!(drain(&q), ["via-front"]);
}

#[test]
fn a_deleted_queue_is_no_longer_routed_to() {
    let vhost = vhost();
    declare_exchange(&vhost, "f", ExchangeKind::Fanout, &[]);
    let kept = declare(&vhost, "kept", &[]);
    declare(&vhost, "gone", &[]);
    bind(&vhost, "f", "kept", "");
    bind(&vhost, "f", "gone", "");
    vhost
        .delete_queue("gone", false, false, CONNECTION)
        .unwrap();
    assert_eq!(publish(&vhost, "f", "", "m", plain()), 1);
    assert_eq!(drain(&kept), ["m"]);
}

#[test]
fn an_unbound_queue_stops_receiving() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    bind(&vhost, "amq.direct", "q", "k");
    publish(&vhost, "amq.direct", "k", "before", plain());
    unbind(&vhost, "amq.direct", "q", "k");
    assert_eq!(publish(&vhost, "amq.direct", "k", "after", plain()), 0);
    assert_eq!(drain(&q), ["before"]);
}

/// A vhost with direct exchange `x` (alternate exchange `ae`, a fanout) and queues `routed`
/// (bound to `x` by `known`) and `unrouted` (bound to `ae`).
fn with_alternate_exchange() -> std::sync::Arc<VHost> {
    let vhost = vhost();
    declare_exchange(&vhost, "ae", ExchangeKind::Fanout, &[]);
    declare_exchange(
        &vhost,
        "x",
        ExchangeKind::Direct,
        &[("alternate-exchange", text("ae"))],
    );
    declare(&vhost, "routed", &[]);
    declare(&vhost, "unrouted", &[]);
    bind(&vhost, "x", "routed", "known");
    bind(&vhost, "ae", "unrouted", "");
    vhost
}

#[test]
fn an_unroutable_message_goes_to_the_alternate_exchange() {
    let vhost = with_alternate_exchange();
    publish(&vhost, "x", "known", "routed", plain());
    publish(&vhost, "x", "unknown", "to-ae", plain());
    assert_eq!(drain(&vhost.queue("routed").unwrap()), ["routed"]);
    assert_eq!(drain(&vhost.queue("unrouted").unwrap()), ["to-ae"]);
}

#[test]
fn a_mandatory_message_taken_by_the_alternate_exchange_is_not_returned() {
    let vhost = with_alternate_exchange();
    let outcome = publish_request(&vhost, "x", "unknown", "m", plain(), true);
    assert_eq!(outcome.routed, 1);
    assert!(outcome.returned.is_none());
    let m = &vhost.queue("unrouted").unwrap().get(true).unwrap().0;
    // Delivered with the exchange and routing key it was published with.
    assert_eq!(
        (&*m.message.exchange, m.message.routing_key.as_str()),
        ("x", "unknown")
    );
}

#[test]
fn a_missing_alternate_exchange_leaves_the_message_unroutable() {
    let vhost = vhost();
    declare_exchange(
        &vhost,
        "x",
        ExchangeKind::Direct,
        &[("alternate-exchange", text("absent"))],
    );
    let outcome = publish_request(&vhost, "x", "k", "m", plain(), true);
    assert_eq!(outcome.routed, 0);
    assert!(outcome.returned.is_some());
}

#[test]
fn alternate_exchanges_chain_and_a_loop_of_them_ends() {
    let vhost = vhost();
    declare_exchange(
        &vhost,
        "x1",
        ExchangeKind::Direct,
        &[("alternate-exchange", text("x2"))],
    );
    declare_exchange(
        &vhost,
        "x2",
        ExchangeKind::Direct,
        &[("alternate-exchange", text("x3"))],
    );
    declare_exchange(
        &vhost,
        "x3",
        ExchangeKind::Direct,
        &[("alternate-exchange", text("x1"))],
    );
    let q = declare(&vhost, "q", &[]);
    bind(&vhost, "x3", "q", "k3");
    assert_eq!(publish(&vhost, "x1", "k3", "via-x3", plain()), 1);
    assert_eq!(drain(&q), ["via-x3"]);
    // Nothing matches anywhere: x1 → x2 → x3 → (x1 again: stop).
    let outcome = publish_request(&vhost, "x1", "none", "lost", plain(), true);
    assert_eq!(outcome.routed, 0);
    assert!(outcome.returned.is_some());
}

#[test]
fn the_alternate_exchange_of_an_exchange_reached_by_a_binding_is_followed() {
    let vhost = vhost();
    declare_exchange(&vhost, "front", ExchangeKind::Fanout, &[]);
    declare_exchange(&vhost, "ae", ExchangeKind::Fanout, &[]);
    declare_exchange(
        &vhost,
        "inner",
        ExchangeKind::Direct,
        &[("alternate-exchange", text("ae"))],
    );
    bind_exchange(&vhost, "inner", "front", "");
    let q = declare(&vhost, "q", &[]);
    bind(&vhost, "ae", "q", "");
    assert_eq!(publish(&vhost, "front", "k", "m", plain()), 1);
    assert_eq!(drain(&q), ["m"]);
}

/// RabbitMQ (`rabbit_exchange:route1/process_alternate`) follows an exchange's alternate
/// exchange only when the exchange's own bindings match nothing; a binding that leads on to
/// another exchange is a match, even if that exchange then routes nowhere.
#[test]
fn an_exchange_whose_binding_matched_another_exchange_does_not_use_its_alternate() {
    let vhost = vhost();
    declare_exchange(&vhost, "ae", ExchangeKind::Fanout, &[]);
    declare_exchange(
        &vhost,
        "x",
        ExchangeKind::Fanout,
        &[("alternate-exchange", text("ae"))],
    );
    declare_exchange(&vhost, "empty", ExchangeKind::Direct, &[]);
    bind_exchange(&vhost, "empty", "x", "");
    let q = declare(&vhost, "q", &[]);
    bind(&vhost, "ae", "q", "");
    assert_eq!(publish(&vhost, "x", "k", "m", plain()), 0);
    assert!(drain(&q).is_empty());
}

/// The same rule when the matched queue was already reached earlier in the walk.
#[test]
fn an_exchange_matching_an_already_reached_queue_does_not_use_its_alternate() {
    let vhost = vhost();
    declare_exchange(&vhost, "front", ExchangeKind::Fanout, &[]);
    declare_exchange(&vhost, "ae", ExchangeKind::Fanout, &[]);
    declare_exchange(
        &vhost,
        "x",
        ExchangeKind::Fanout,
        &[("alternate-exchange", text("ae"))],
    );
    let q = declare(&vhost, "q", &[]);
    let spill = declare(&vhost, "spill", &[]);
    bind(&vhost, "front", "q", "");
    bind_exchange(&vhost, "x", "front", "");
    bind(&vhost, "x", "q", "");
    bind(&vhost, "ae", "spill", "");
    assert_eq!(publish(&vhost, "front", "", "m", plain()), 1);
    assert_eq!(drain(&q), ["m"]);
    assert!(drain(&spill).is_empty());
}
