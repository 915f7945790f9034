//! Topologies a client can make as deep as it likes: a chain of 5,000 exchanges bound one to
//! the next, routed through by one publish, and deleted by one auto-delete cascade. The broker
//! walks both in loops; a recursion per exchange overflowed the stack and killed the process
//! (either test kills the broker without that).

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, exchange, queue};

use super::assert_served_within_5s;
use crate::common::*;

const CHAIN: usize = 5_000;

/// Declares `names` as auto-delete fanout exchanges, each bound to the next, the last one to
/// `queue_name`; all pipelined with nowait, then one round trip.
async fn declare_chain(raw: &mut RawClient, names: &[String], queue_name: &str) {
    let mut bytes = Vec::new();
    for name in names {
        bytes.extend(method_frame(
            1,
            AMQPClass::Exchange(exchange::AMQPMethod::Declare(exchange::Declare {
                exchange: name.as_str().into(),
                kind: "fanout".into(),
                auto_delete: true,
                nowait: true,
                ..Default::default()
            })),
        ));
    }
    for pair in names.windows(2) {
        bytes.extend(method_frame(
            1,
            AMQPClass::Exchange(exchange::AMQPMethod::Bind(exchange::Bind {
                destination: pair[1].as_str().into(),
                source: pair[0].as_str().into(),
                routing_key: "".into(),
                nowait: true,
                ..Default::default()
            })),
        ));
    }
    bytes.extend(method_frame(
        1,
        AMQPClass::Queue(queue::AMQPMethod::Bind(queue::Bind {
            queue: queue_name.into(),
            exchange: names[names.len() - 1].as_str().into(),
            routing_key: "".into(),
            nowait: false,
            ..Default::default()
        })),
    ));
    raw.send_bytes(&bytes).await;
    // RabbitMQ takes tens of seconds over 10,000 declares and binds; warren well under one.
    match raw.recv_within(std::time::Duration::from_secs(120)).await {
        Recv::Frame(AMQPFrame::Method(1, AMQPClass::Queue(queue::AMQPMethod::BindOk(_)))) => {}
        Recv::Frame(other) => panic!("expected queue.bind-ok after the chain, got {other:?}"),
        other => panic!("expected queue.bind-ok after the chain, got {other:?}"),
    }
}

/// A broker with a chain of [`CHAIN`] auto-delete exchanges ending in a queue: (broker, the
/// exchanges in order, the queue).
async fn broker_with_chain() -> (TestBroker, Vec<String>, String) {
    let (broker, _conn, _ch, queue_name) = broker_with_queue("chain-end").await;
    let prefix = unique("chain");
    let names: Vec<String> = (0..CHAIN).map(|i| format!("{prefix}-{i}")).collect();
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    declare_chain(&mut raw, &names, &queue_name).await;
    (broker, names, queue_name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_publish_routes_through_a_chain_of_five_thousand_exchanges() {
    let (mut broker, names, queue_name) = broker_with_chain().await;
    let (_conn, ch) = broker.channel().await;
    publish(&ch, &names[0], "", b"through the chain").await;
    sync(&ch).await;
    assert_eq!(
        get_body(&ch, &queue_name).await.as_deref(),
        Some(&b"through the chain"[..])
    );
    assert_served_within_5s(&broker).await;
    broker.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_end_of_a_chain_of_five_thousand_auto_delete_exchanges_cascades() {
    let (mut broker, names, queue_name) = broker_with_chain().await;
    let (_conn, ch) = broker.channel().await;
    // Deleting the queue unbinds the last exchange, which auto-deletes, which unbinds the one
    // before it… back to the first.
    delete_queue(&ch, &queue_name).await;
    let gone = declare_exchange_passive(&ch, &names[0], lapin::ExchangeKind::Fanout).await;
    assert_eq!(
        expect_amqp_error(gone).0,
        404,
        "the cascade reached the first exchange"
    );
    broker.assert_alive().await;
}
