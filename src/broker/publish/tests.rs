//! Publishing without sockets: requests go straight to [`VHost::publish`] and the outcome and
//! the queues are inspected. Each test builds its own in-memory vhost.

use std::sync::{Arc, Mutex};

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldArray, FieldTable, LongString};
use bytes::Bytes;
use warren_protocol::{AmqpError, Properties, ShortStr};

use super::*;
use crate::broker::consumer::ReplyTarget;
use crate::broker::exchange::{Binding, Destination, ExchangeKind, ExchangeOptions};
use crate::broker::queue::QueueDeclaration;

fn short(s: &str) -> ShortStr {
    ShortStr::from_slice(s.as_bytes()).expect("a short string")
}

fn queue_options(arguments: FieldTable) -> QueueDeclaration {
    QueueDeclaration {
        durable: false,
        exclusive_owner: None,
        auto_delete: false,
        arguments,
    }
}

fn exchange_options(kind: ExchangeKind, internal: bool) -> ExchangeOptions {
    ExchangeOptions {
        kind,
        durable: false,
        auto_delete: false,
        internal,
        arguments: FieldTable::default(),
    }
}

/// A vhost with direct exchange `x`, internal exchange `hidden`, and queues `q1`, `q2`, `q3`,
/// bound to `x` by their own names.
fn vhost() -> Arc<VHost> {
    let vhost = VHost::new(
        "/",
        None,
        Default::default(),
        Default::default(),
        Default::default(),
        Default::default(),
    );
    vhost
        .declare_exchange("x", exchange_options(ExchangeKind::Direct, false), false)
        .unwrap();
    vhost
        .declare_exchange(
            "hidden",
            exchange_options(ExchangeKind::Fanout, true),
            false,
        )
        .unwrap();
    for q in ["q1", "q2", "q3"] {
        declare_queue(&vhost, q, FieldTable::default());
        bind(&vhost, "x", q, q);
    }
    vhost
}

fn declare_queue(vhost: &VHost, name: &str, arguments: FieldTable) {
    vhost
        .declare_queue(name, queue_options(arguments), false, 1)
        .unwrap();
}

fn bind(vhost: &VHost, exchange: &str, queue: &str, key: &str) {
    let binding = Binding {
        destination: Destination::Queue(Arc::from(queue)),
        routing_key: key.into(),
        arguments: FieldTable::default(),
    };
    vhost.bind(exchange, binding, 1).unwrap();
}

fn request<'a>(
    exchange: &str,
    routing_key: &str,
    properties: BasicProperties,
) -> PublishRequest<'a> {
    PublishRequest {
        exchange: short(exchange),
        routing_key: short(routing_key),
        mandatory: false,
        properties: Properties::from_basic(&properties),
        body: Bytes::from_static(b"hello"),
        user: crate::broker::queue::test_support::guest(),
        reply_address: None,
    }
}

fn publish(vhost: &VHost, request: PublishRequest) -> Result<PublishOutcome, AmqpError> {
    vhost.publish(request, &mut Publisher::default())
}

/// The messages ready in `queue`, taken out (no-ack).
fn take_all(vhost: &VHost, queue: &str) -> Vec<Arc<Message>> {
    let queue = vhost.queue(queue).expect("the queue exists");
    std::iter::from_fn(|| queue.get(true).map(|(m, _)| m.message)).collect()
}

fn headers(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut table = FieldTable::default();
    for (k, v) in pairs {
        table.insert((*k).into(), v.clone());
    }
    table
}

fn keys(keys: &[&str]) -> AMQPValue {
    let mut array = FieldArray::default();
    for k in keys {
        array.push(AMQPValue::LongString(LongString::from(*k)));
    }
    AMQPValue::FieldArray(array)
}

#[test]
fn a_routed_message_is_enqueued_once_per_matching_queue() {
    let vhost = vhost();
    let outcome = publish(&vhost, request("x", "q1", BasicProperties::default())).unwrap();
    assert_eq!(outcome.routed, 1);
    assert!(outcome.returned.is_none() && !outcome.rejected && outcome.durable.is_none());
    let got = take_all(&vhost, "q1");
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0].body[..], b"hello");
    assert_eq!(&*got[0].exchange, "x");
    assert_eq!(got[0].routing_key.as_str(), "q1");
    assert!(take_all(&vhost, "q2").is_empty());
}

#[test]
fn fan_out_shares_one_message() {
    let vhost = vhost();
    vhost
        .declare_exchange("f", exchange_options(ExchangeKind::Fanout, false), false)
        .unwrap();
    bind(&vhost, "f", "q1", "");
    bind(&vhost, "f", "q2", "");
    let outcome = publish(&vhost, request("f", "", BasicProperties::default())).unwrap();
    assert_eq!(outcome.routed, 2);
    let (a, b) = (take_all(&vhost, "q1"), take_all(&vhost, "q2"));
    assert!(
        Arc::ptr_eq(&a[0], &b[0]),
        "one Arc<Message> for both queues"
    );
}

#[test]
fn the_default_exchange_routes_by_queue_name() {
    let vhost = vhost();
    let outcome = publish(&vhost, request("", "q3", BasicProperties::default())).unwrap();
    assert_eq!(outcome.routed, 1);
    assert_eq!(take_all(&vhost, "q3").len(), 1);
}

#[test]
fn an_unroutable_message_comes_back_only_when_mandatory() {
    let vhost = vhost();
    let outcome = publish(&vhost, request("x", "nowhere", BasicProperties::default())).unwrap();
    assert_eq!(outcome.routed, 0);
    assert!(outcome.returned.is_none());

    let mut mandatory = request(
        "x",
        "nowhere",
        BasicProperties::default().with_content_type("text/plain".into()),
    );
    mandatory.mandatory = true;
    let returned = publish(&vhost, mandatory)
        .unwrap()
        .returned
        .expect("returned");
    assert_eq!(returned.exchange.as_str(), "x");
    assert_eq!(returned.routing_key.as_str(), "nowhere");
    assert_eq!(&returned.body[..], b"hello");
    assert_eq!(
        returned
            .properties
            .to_basic()
            .content_type()
            .as_ref()
            .map(|s| s.as_str()),
        Some("text/plain")
    );
}

#[test]
fn refusals_use_rabbitmqs_codes_and_texts() {
    let vhost = vhost();
    let refused = |r: PublishRequest| publish(&vhost, r).err().expect("refused");

    let e = refused(request("missing", "k", BasicProperties::default()));
    assert_eq!(e.code, 404);
    assert_eq!(e.text, "NOT_FOUND - no exchange 'missing' in vhost '/'");

    let e = refused(request("hidden", "k", BasicProperties::default()));
    assert_eq!(e.code, 403);
    assert_eq!(
        e.text,
        "ACCESS_REFUSED - cannot publish to internal exchange 'hidden' in vhost '/'"
    );

    let e = refused(request(
        "x",
        "q1",
        BasicProperties::default().with_user_id("alice".into()),
    ));
    assert_eq!(e.code, 406);
    assert_eq!(
        e.text,
        "PRECONDITION_FAILED - user_id property set to 'alice' but authenticated user was 'guest'"
    );

    for (expiration, reason) in [
        ("soon", "no_integer"),
        ("10s", "{leftover_string,\"s\"}"),
        ("-5", "{value_negative,-5}"),
    ] {
        let e = refused(request(
            "x",
            "q1",
            BasicProperties::default().with_expiration(expiration.into()),
        ));
        assert_eq!(
            e.text,
            format!("PRECONDITION_FAILED - invalid expiration '{expiration}': {reason}")
        );
    }

    let e = refused(request(
        "x",
        "q1",
        BasicProperties::default()
            .with_headers(headers(&[("CC", AMQPValue::LongString("a".into()))])),
    ));
    assert_eq!(e.code, 406);
    assert!(e.text.contains("unacceptable_type_in_header"), "{}", e.text);
    assert!(
        take_all(&vhost, "q1").is_empty(),
        "nothing refused was enqueued"
    );
}

#[test]
fn cc_and_bcc_add_routing_keys_and_bcc_is_not_delivered() {
    let vhost = vhost();
    let props = BasicProperties::default().with_headers(headers(&[
        ("CC", keys(&["q2"])),
        ("BCC", keys(&["q3", "q1"])),
        ("other", AMQPValue::LongString("kept".into())),
    ]));
    let outcome = publish(&vhost, request("x", "q1", props)).unwrap();
    assert_eq!(outcome.routed, 3, "each queue once");
    for q in ["q1", "q2", "q3"] {
        let got = take_all(&vhost, q);
        assert_eq!(got.len(), 1, "{q}");
        let delivered = got[0].properties.headers().expect("headers");
        assert!(delivered.inner().contains_key("CC"));
        assert!(delivered.inner().contains_key("other"));
        assert!(!delivered.inner().contains_key("BCC"), "BCC is stripped");
    }
}

#[test]
fn a_full_reject_publish_queue_rejects() {
    let vhost = vhost();
    declare_queue(
        &vhost,
        "small",
        headers(&[
            ("x-max-length", AMQPValue::LongLongInt(1)),
            ("x-overflow", AMQPValue::LongString("reject-publish".into())),
        ]),
    );
    let first = publish(&vhost, request("", "small", BasicProperties::default())).unwrap();
    assert!(!first.rejected);
    let second = publish(&vhost, request("", "small", BasicProperties::default())).unwrap();
    assert!(second.rejected);
    assert_eq!(take_all(&vhost, "small").len(), 1);
}

#[test]
fn without_a_store_nothing_waits_for_a_commit() {
    let vhost = vhost();
    declare_queue(&vhost, "persistent", FieldTable::default());
    let outcome = publish(
        &vhost,
        request(
            "",
            "persistent",
            BasicProperties::default().with_delivery_mode(2),
        ),
    )
    .unwrap();
    assert!(outcome.durable.is_none());
}

/// A direct reply-to requester that records what reaches it.
#[derive(Default)]
struct Requester {
    replies: Mutex<Vec<Bytes>>,
}

impl ReplyTarget for Requester {
    fn deliver_reply(&self, message: &Message) {
        self.replies.lock().unwrap().push(message.body.clone());
    }
}

#[test]
fn direct_reply_to_rewrites_requests_and_delivers_replies() {
    let vhost = vhost();
    let requester = Arc::new(Requester::default());
    let target: Arc<dyn ReplyTarget> = requester.clone();
    let address = vhost.replies.register(&target);

    // A request without a reply consumer is refused, as RabbitMQ does.
    let asks = BasicProperties::default().with_reply_to(REPLY_PSEUDO_QUEUE.into());
    let e = publish(&vhost, request("", "q1", asks.clone()))
        .err()
        .expect("refused");
    assert_eq!(
        e.text,
        "PRECONDITION_FAILED - fast reply consumer does not exist"
    );

    // With one, the request carries the requester's address.
    let mut req = request("", "q1", asks);
    req.reply_address = Some(&address);
    assert_eq!(publish(&vhost, req).unwrap().routed, 1);
    let got = take_all(&vhost, "q1");
    assert_eq!(got[0].properties.reply_to(), Some(address.as_str()));

    // The reply goes straight to the requester.
    let outcome = publish(&vhost, request("", &address, BasicProperties::default())).unwrap();
    assert_eq!(outcome.routed, 1);
    assert_eq!(requester.replies.lock().unwrap().len(), 1);

    // Once the requester is gone, replies to it are unroutable.
    vhost.replies.forget(&address);
    let mut late = request("", &address, BasicProperties::default());
    late.mandatory = true;
    let outcome = publish(&vhost, late).unwrap();
    assert_eq!(outcome.routed, 0);
    assert!(outcome.returned.is_some());
}

#[test]
fn a_transaction_checks_at_arrival_and_routes_at_commit() {
    let vhost = vhost();
    let mut publisher = Publisher::default();
    let checked = vhost
        .check_publish(
            request("x", "q1", BasicProperties::default()),
            &mut publisher,
        )
        .unwrap();
    assert!(
        take_all(&vhost, "q1").is_empty(),
        "not routed before commit"
    );
    let outcome = vhost.route_publish(checked, &mut publisher);
    assert_eq!(outcome.routed, 1);
    assert_eq!(take_all(&vhost, "q1").len(), 1);
}
