//! Field tables and arrays nested as deep as a frame allows, in every place a table can appear:
//! client-properties, the AMQPLAIN response, every method's arguments, content-header headers.
//! The broker answers (an error close, or an ok where nesting is harmless) and stays up.

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, channel, connection};

use super::assert_served_within_5s;
use crate::common::*;

/// Room for nesting inside one frame of the broker's default frame_max (131,072).
const ROOM: usize = 131_072 - 512;
/// Before tune-ok, frames are limited to 4,096 bytes (as on RabbitMQ).
const ROOM_BEFORE_TUNE: usize = 4096 - 256;

/// A field value nested `levels` deep: arrays (`A`) or tables (`F`, one key "k" per level).
/// Written outermost first: each level's length is known from the levels below it.
fn nested_value(levels: usize, tables: bool) -> Vec<u8> {
    let per_level = if tables { 7 } else { 5 };
    let mut value = Vec::with_capacity(levels * per_level);
    for i in 0..levels {
        let inner = (levels - 1 - i) * per_level;
        value.push(if tables { b'F' } else { b'A' });
        value.extend_from_slice(&(inner as u32).to_be_bytes());
        if tables && i + 1 < levels {
            value.extend_from_slice(&[1, b'k']);
        }
    }
    value
}

/// A field table (with its length) holding one entry `x` = a value nested to fill `room` bytes.
fn deep_table(room: usize, tables: bool) -> Vec<u8> {
    let levels = if tables { room / 7 } else { room / 5 };
    deep_table_levels(levels, tables)
}

fn deep_table_levels(levels: usize, tables: bool) -> Vec<u8> {
    let value = nested_value(levels, tables);
    let mut t = ((value.len() + 2) as u32).to_be_bytes().to_vec();
    t.extend_from_slice(&[1, b'x']);
    t.extend_from_slice(&value);
    t
}

fn short(s: &str) -> Vec<u8> {
    let mut v = vec![s.len() as u8];
    v.extend_from_slice(s.as_bytes());
    v
}

fn long(b: &[u8]) -> Vec<u8> {
    let mut v = (b.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(b);
    v
}

fn method_payload(class: u16, method: u16, args: &[&[u8]]) -> Vec<u8> {
    let mut p = class.to_be_bytes().to_vec();
    p.extend_from_slice(&method.to_be_bytes());
    for a in args {
        p.extend_from_slice(a);
    }
    p
}

/// What the broker did with a deep frame: any answer is fine as long as it answers.
async fn expect_some_answer(raw: &mut RawClient, what: &str) {
    match raw.recv_within(WAIT).await {
        Recv::Frame(_) | Recv::Closed => {}
        Recv::Timeout => panic!("{what}: no answer within 5 s"),
    }
}

/// Sends start-ok with `start_ok(deep_table)` for the deepest a pre-login frame allows and for
/// a frame too large to be read at all; each gets an answer and others are served meanwhile.
async fn deep_start_ok(what: &str, start_ok: impl Fn(&[u8]) -> Vec<u8>) {
    let mut broker = TestBroker::start();
    for (room, tables) in [
        (ROOM_BEFORE_TUNE, false),
        (ROOM_BEFORE_TUNE, true),
        (ROOM, false),
    ] {
        let mut raw = RawClient::connect(broker.addr()).await;
        raw.start().await;
        let payload = start_ok(&deep_table(room, tables));
        raw.send_bytes(&raw_frame(1, 0, &payload, 0xCE)).await;
        expect_some_answer(&mut raw, what).await;
        assert_served_within_5s(&broker).await;
    }
    broker.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_client_properties_in_start_ok() {
    deep_start_ok("deep client-properties", |deep| {
        let plain = plain_response("guest", "guest");
        method_payload(
            10,
            11,
            &[deep, &short("PLAIN"), &long(&plain), &short("en_US")],
        )
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_amqplain_response() {
    deep_start_ok("deep AMQPLAIN response", |deep| {
        // The AMQPLAIN response is a table without its length: LOGIN, PASSWORD, then the bomb.
        let mut response = amqplain_response("guest", "guest");
        response.extend_from_slice(&deep[4..]);
        let no_properties = [0u8, 0, 0, 0];
        method_payload(
            10,
            11,
            &[
                &no_properties,
                &short("AMQPLAIN"),
                &long(&response),
                &short("en_US"),
            ],
        )
    })
    .await;
}

/// Every method that carries a field table, with a deep one, on a fresh connection each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_arguments_in_every_method_that_has_them() {
    let mut broker = TestBroker::start();
    let bits = [0u8];
    for tables in [false, true] {
        let args = deep_table(ROOM, tables);
        let ticket = [0u8, 0];
        let methods: Vec<(&str, Vec<u8>)> = vec![
            (
                "exchange.declare",
                method_payload(
                    40,
                    10,
                    &[&ticket, &short("deep-x"), &short("direct"), &bits, &args],
                ),
            ),
            (
                "exchange.bind",
                method_payload(
                    40,
                    30,
                    &[
                        &ticket,
                        &short("amq.fanout"),
                        &short("amq.direct"),
                        &short("k"),
                        &bits,
                        &args,
                    ],
                ),
            ),
            (
                "exchange.unbind",
                method_payload(
                    40,
                    40,
                    &[
                        &ticket,
                        &short("amq.fanout"),
                        &short("amq.direct"),
                        &short("k"),
                        &bits,
                        &args,
                    ],
                ),
            ),
            (
                "queue.declare",
                method_payload(50, 10, &[&ticket, &short("deep-q"), &bits, &args]),
            ),
            (
                "queue.bind",
                method_payload(
                    50,
                    20,
                    &[
                        &ticket,
                        &short("deep-q"),
                        &short("amq.direct"),
                        &short("k"),
                        &bits,
                        &args,
                    ],
                ),
            ),
            (
                "queue.unbind",
                method_payload(
                    50,
                    50,
                    &[
                        &ticket,
                        &short("deep-q"),
                        &short("amq.direct"),
                        &short("k"),
                        &args,
                    ],
                ),
            ),
            (
                "basic.consume",
                method_payload(
                    60,
                    20,
                    &[&ticket, &short("deep-q"), &short("tag"), &bits, &args],
                ),
            ),
        ];
        for (name, payload) in methods {
            let mut raw = broker.raw_open().await;
            raw.open_channel(1).await;
            raw.send_bytes(&raw_frame(1, 1, &payload, 0xCE)).await;
            expect_some_answer(&mut raw, name).await;
            assert_served_within_5s(&broker).await;
        }
    }
    broker.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_headers_in_a_content_header() {
    let mut broker = TestBroker::start();
    for tables in [false, true] {
        let mut raw = broker.raw_open().await;
        raw.open_channel(1).await;
        let mut bytes = publish_method_frame(1, "amq.headers", "");
        // class 60, weight 0, body size 0, flags: headers (bit 13), then the table.
        let mut header = vec![0, 60, 0, 0];
        header.extend_from_slice(&0u64.to_be_bytes());
        header.extend_from_slice(&0x2000u16.to_be_bytes());
        header.extend_from_slice(&deep_table(ROOM, tables));
        bytes.extend(raw_frame(2, 1, &header, 0xCE));
        // A round trip after it, so a broker that accepted the header still answers.
        bytes.extend(method_frame(
            1,
            AMQPClass::Channel(channel::AMQPMethod::Flow(channel::Flow { active: true })),
        ));
        raw.send_bytes(&bytes).await;
        expect_some_answer(&mut raw, "deep headers").await;
        assert_served_within_5s(&broker).await;
    }
    broker.assert_alive().await;
}

/// Nesting within the limit is still accepted everywhere (the guard refuses only depth).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderately_nested_arguments_are_accepted() {
    let (_broker, mut raw) = broker_with_raw_channel().await;
    let name = unique("nested-ok");
    let payload = method_payload(
        50,
        10,
        &[
            &[0, 0],
            &short(&name),
            &[0b0100],
            &deep_table_levels(20, true),
        ],
    );
    raw.send_bytes(&raw_frame(1, 1, &payload, 0xCE)).await;
    match raw.recv().await {
        AMQPFrame::Method(1, AMQPClass::Queue(_)) => {}
        AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(c))) => {
            panic!("20 levels refused: {c:?}")
        }
        other => panic!("expected queue.declare-ok, got {other:?}"),
    }
}
