//! Turns arbitrary bytes into what a client sends: the protocol header, most often a valid
//! login, then a sequence of frames chosen by the bytes — every method a client may send, with
//! names, flags and arguments from small sets (so that sequences meet the same queues and
//! exchanges again), well-formed publishes, and also content frames out of order, frames on
//! channels that are not open, raw frames of any type and plain garbage.
//!
//! Used by the connection fuzz target and its property test; the broker never calls it.

use amq_protocol::protocol::{AMQPClass, basic, channel, confirm, connection, exchange, queue, tx};
use amq_protocol::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use bytes::BytesMut;
use warren_protocol::PROTOCOL_HEADER;

/// Reads choices out of the fuzzer's bytes; once they run out, every choice is 0.
pub struct Choices<'a> {
    data: &'a [u8],
}

impl<'a> Choices<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Choices { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    pub fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// A number below `n` (n ≤ 256).
    pub fn below(&mut self, n: usize) -> usize {
        self.byte() as usize % n.max(1)
    }

    /// True about once in 64 choices: for out-of-place actions.
    pub fn seldom(&mut self) -> bool {
        self.byte() < 4
    }

    /// True about once in 256 choices: for field values that end the connection, so that runs
    /// get deep.
    pub fn rare(&mut self) -> bool {
        self.byte() == 0
    }

    pub fn pick<T: Copy>(&mut self, options: &[T]) -> T {
        options[self.below(options.len())]
    }

    /// Up to `max` raw bytes.
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = (self.byte() as usize).min(max).min(self.data.len());
        let (taken, rest) = self.data.split_at(n);
        self.data = rest;
        taken
    }
}

const QUEUES: [&str; 6] = ["q0", "q1", "q2", "", "amq.rabbitmq.reply-to", "amq.q"];
const EXCHANGES: [&str; 8] = [
    "",
    "x0",
    "x1",
    "amq.direct",
    "amq.fanout",
    "amq.topic",
    "amq.headers",
    "amq.x",
];
const KINDS: [&str; 4] = ["direct", "fanout", "topic", "headers"];
/// Exchange types the broker does not know: a connection error (503), as on RabbitMQ.
const ODD_KINDS: [&str; 2] = ["x-bogus", "x-delayed-message"];
const KEYS: [&str; 7] = ["", "q0", "q1", "a.b", "#", "*.b", "amq.rabbitmq.reply-to"];
const TAGS: [&str; 4] = ["", "c0", "c1", "c2"];

fn short(s: &str) -> ShortString {
    ShortString::from(s)
}

fn long(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

/// Queue, exchange, binding or consumer arguments: mostly the ones the broker interprets.
fn arguments(c: &mut Choices) -> FieldTable {
    let mut t = FieldTable::default();
    for _ in 0..c.below(4) {
        let (key, value) = match c.below(16) {
            0 => ("x-message-ttl", AMQPValue::LongLongInt(c.byte() as i64 - 8)),
            1 => ("x-max-length", AMQPValue::LongLongInt(c.below(4) as i64)),
            2 => (
                "x-max-length-bytes",
                AMQPValue::LongLongInt(c.below(64) as i64),
            ),
            3 => (
                "x-overflow",
                long(c.pick(&["drop-head", "reject-publish", "reject-publish-dlx", "bogus"])),
            ),
            4 => ("x-dead-letter-exchange", long(c.pick(&EXCHANGES))),
            5 => ("x-dead-letter-routing-key", long(c.pick(&KEYS))),
            6 => ("x-max-priority", AMQPValue::ShortShortUInt(c.byte())),
            7 => ("x-expires", AMQPValue::LongLongInt(c.byte() as i64)),
            8 => ("x-single-active-consumer", AMQPValue::Boolean(c.bool())),
            9 => ("x-priority", AMQPValue::LongInt(c.byte() as i32 - 128)),
            10 => ("alternate-exchange", long(c.pick(&EXCHANGES))),
            11 => (
                "x-match",
                long(c.pick(&["all", "any", "all-with-x", "any-with-x", "none"])),
            ),
            12 => (
                "x-queue-type",
                long(c.pick(&["classic", "quorum", "stream"])),
            ),
            13 => (
                "x-consumer-timeout",
                AMQPValue::LongLongInt(c.byte() as i64),
            ),
            14 => (
                "k",
                AMQPValue::FieldArray(FieldArray::from(vec![long("v"), AMQPValue::Void])),
            ),
            _ => ("x-delayed-type", long(c.pick(&KINDS))),
        };
        t.insert(short(key), value);
    }
    t
}

fn method(c: &mut Choices) -> AMQPClass {
    match c.below(29) {
        // channel.open on an open channel, close-ok on one not closing, flow(false) are
        // connection errors (the driver reopens channels the broker closes).
        0 if c.rare() => AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
        1 => AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
            reply_code: 200,
            reply_text: short("bye"),
            class_id: 0,
            method_id: 0,
        })),
        2 if c.rare() => AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
        3 => AMQPClass::Channel(channel::AMQPMethod::Flow(channel::Flow {
            active: !c.rare(),
        })),
        0 | 2 => AMQPClass::Basic(basic::AMQPMethod::Get(basic::Get {
            queue: short(c.pick(&QUEUES)),
            no_ack: c.bool(),
        })),
        4 => AMQPClass::Exchange(exchange::AMQPMethod::Declare(exchange::Declare {
            exchange: short(c.pick(&EXCHANGES)),
            kind: short(if c.rare() {
                c.pick(&ODD_KINDS)
            } else {
                c.pick(&KINDS)
            }),
            passive: c.byte() < 32,
            durable: c.bool(),
            auto_delete: c.bool(),
            internal: c.byte() < 32,
            nowait: c.byte() < 32,
            arguments: arguments(c),
        })),
        5 => AMQPClass::Exchange(exchange::AMQPMethod::Delete(exchange::Delete {
            exchange: short(c.pick(&EXCHANGES)),
            if_unused: c.bool(),
            nowait: c.byte() < 32,
        })),
        6 | 7 => {
            let (destination, source, routing_key) = (
                short(c.pick(&EXCHANGES)),
                short(c.pick(&EXCHANGES)),
                short(c.pick(&KEYS)),
            );
            let (nowait, arguments) = (c.byte() < 32, arguments(c));
            if c.bool() {
                AMQPClass::Exchange(exchange::AMQPMethod::Bind(exchange::Bind {
                    destination,
                    source,
                    routing_key,
                    nowait,
                    arguments,
                }))
            } else {
                AMQPClass::Exchange(exchange::AMQPMethod::Unbind(exchange::Unbind {
                    destination,
                    source,
                    routing_key,
                    nowait,
                    arguments,
                }))
            }
        }
        8 | 9 => AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
            queue: short(c.pick(&QUEUES)),
            passive: c.byte() < 32,
            durable: c.bool(),
            exclusive: c.byte() < 64,
            auto_delete: c.byte() < 64,
            nowait: c.byte() < 32,
            arguments: arguments(c),
        })),
        10 => AMQPClass::Queue(queue::AMQPMethod::Bind(queue::Bind {
            queue: short(c.pick(&QUEUES)),
            exchange: short(c.pick(&EXCHANGES)),
            routing_key: short(c.pick(&KEYS)),
            nowait: c.byte() < 32,
            arguments: arguments(c),
        })),
        11 => AMQPClass::Queue(queue::AMQPMethod::Unbind(queue::Unbind {
            queue: short(c.pick(&QUEUES)),
            exchange: short(c.pick(&EXCHANGES)),
            routing_key: short(c.pick(&KEYS)),
            arguments: arguments(c),
        })),
        12 => AMQPClass::Queue(queue::AMQPMethod::Purge(queue::Purge {
            queue: short(c.pick(&QUEUES)),
            nowait: c.byte() < 32,
        })),
        13 => AMQPClass::Queue(queue::AMQPMethod::Delete(queue::Delete {
            queue: short(c.pick(&QUEUES)),
            if_unused: c.bool(),
            if_empty: c.bool(),
            nowait: c.byte() < 32,
        })),
        14 => AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
            prefetch_count: c.below(4) as u16,
            global: c.bool(),
        })),
        15 | 16 => AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
            queue: short(c.pick(&QUEUES)),
            consumer_tag: short(c.pick(&TAGS)),
            no_local: false,
            no_ack: c.bool(),
            exclusive: c.byte() < 32,
            nowait: c.byte() < 32,
            arguments: arguments(c),
        })),
        17 => AMQPClass::Basic(basic::AMQPMethod::Cancel(basic::Cancel {
            consumer_tag: short(c.pick(&TAGS)),
            nowait: c.byte() < 32,
        })),
        18 => AMQPClass::Basic(basic::AMQPMethod::Get(basic::Get {
            queue: short(c.pick(&QUEUES)),
            no_ack: c.bool(),
        })),
        19 | 20 => AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
            delivery_tag: c.below(8) as u64,
            multiple: c.bool(),
        })),
        21 => AMQPClass::Basic(basic::AMQPMethod::Nack(basic::Nack {
            delivery_tag: c.below(8) as u64,
            multiple: c.bool(),
            requeue: c.bool(),
        })),
        22 => AMQPClass::Basic(basic::AMQPMethod::Reject(basic::Reject {
            delivery_tag: c.below(8) as u64,
            requeue: c.bool(),
        })),
        23 => AMQPClass::Basic(basic::AMQPMethod::Recover(basic::Recover {
            requeue: !c.rare(),
        })),
        24 => AMQPClass::Basic(basic::AMQPMethod::RecoverAsync(basic::RecoverAsync {
            requeue: !c.rare(),
        })),
        25 => AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select {
            nowait: c.byte() < 32,
        })),
        26 => AMQPClass::Tx(tx::AMQPMethod::Select(tx::Select {})),
        27 => AMQPClass::Tx(tx::AMQPMethod::Commit(tx::Commit {})),
        _ => AMQPClass::Tx(tx::AMQPMethod::Rollback(tx::Rollback {})),
    }
}

fn connection_method(c: &mut Choices) -> AMQPClass {
    AMQPClass::Connection(match c.below(6) {
        0 => connection::AMQPMethod::Close(connection::Close {
            reply_code: 200,
            reply_text: short("bye"),
            class_id: 0,
            method_id: 0,
        }),
        1 => connection::AMQPMethod::CloseOk(connection::CloseOk {}),
        2 => connection::AMQPMethod::UpdateSecret(connection::UpdateSecret {
            new_secret: LongString::from(b"s".to_vec()),
            reason: short("r"),
        }),
        3 => connection::AMQPMethod::Blocked(connection::Blocked { reason: short("r") }),
        4 => connection::AMQPMethod::TuneOk(connection::TuneOk {
            channel_max: c.u16(),
            frame_max: 4096 + c.u16() as u32,
            heartbeat: c.below(3) as u16,
        }),
        _ => connection::AMQPMethod::Open(connection::Open {
            virtual_host: short("/"),
        }),
    })
}

/// Content-header properties: what the broker reads (delivery mode, expiration, priority,
/// reply-to, CC/BCC and other headers, user-id), sometimes nonsense.
fn properties(c: &mut Choices) -> basic::AMQPProperties {
    let mut p = basic::AMQPProperties::default();
    if c.bool() {
        p = p.with_delivery_mode(c.pick(&[1, 2, 0, 7]));
    }
    if c.byte() < 64 {
        p = p.with_expiration(short(c.pick(&["0", "10", "-1", "x", "100000"])));
    }
    if c.byte() < 64 {
        p = p.with_priority(c.byte());
    }
    if c.byte() < 48 {
        p = p.with_reply_to(short(c.pick(&["amq.rabbitmq.reply-to", "q0", ""])));
    }
    if c.byte() < 32 {
        p = p.with_user_id(short(c.pick(&["guest", "other"])));
    }
    if c.byte() < 64 {
        let mut headers = FieldTable::default();
        for _ in 0..c.below(3) {
            let (key, value) = match c.below(5) {
                0 => (
                    "CC",
                    AMQPValue::FieldArray(FieldArray::from(vec![long(c.pick(&KEYS))])),
                ),
                1 => (
                    "BCC",
                    AMQPValue::FieldArray(FieldArray::from(vec![long(c.pick(&KEYS))])),
                ),
                2 => ("CC", long("not-an-array")),
                3 => ("x-delay", AMQPValue::LongLongInt(c.byte() as i64)),
                _ => ("h", long(c.pick(&KEYS))),
            };
            headers.insert(short(key), value);
        }
        p = p.with_headers(headers);
    }
    p
}

/// Appends one frame of type `kind` with `payload`.
fn raw_frame(out: &mut BytesMut, kind: u8, channel: u16, payload: &[u8]) {
    out.extend_from_slice(&[kind]);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&[0xCE]);
}

fn content_header(
    out: &mut BytesMut,
    channel: u16,
    class_id: u16,
    body_size: u64,
    c: &mut Choices,
) {
    let header = amq_protocol::frame::AMQPContentHeader {
        class_id,
        body_size,
        properties: properties(c),
    };
    let frame = amq_protocol::frame::AMQPFrame::Header(channel, header);
    if let Ok((bytes, _)) =
        amq_protocol::frame::gen_frame(&frame)(Vec::new().into()).map(|w| w.into_inner())
    {
        out.extend_from_slice(&bytes);
    }
}

/// A complete basic.publish: method, header, body in one or more frames.
fn publish(out: &mut BytesMut, channel: u16, c: &mut Choices) {
    let method = AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
        exchange: short(c.pick(&EXCHANGES)),
        routing_key: short(c.pick(&KEYS)),
        mandatory: c.bool(),
        immediate: c.rare(),
    }));
    warren_protocol::encode::method(out, channel, &method);
    let body = c.bytes(64).to_vec();
    content_header(out, channel, 60, body.len() as u64, c);
    for chunk in body.chunks(1 + c.below(32)) {
        raw_frame(out, 3, channel, chunk);
    }
}

/// The login a real client does (guest, PLAIN, vhost "/"), sometimes stopped part way.
fn login(out: &mut BytesMut, steps: usize, c: &mut Choices) {
    out.extend_from_slice(PROTOCOL_HEADER);
    if steps == 0 {
        return;
    }
    let mut capabilities = FieldTable::default();
    for cap in ["consumer_cancel_notify", "connection.blocked", "basic.nack"] {
        capabilities.insert(short(cap), AMQPValue::Boolean(c.bool()));
    }
    let mut client_properties = FieldTable::default();
    client_properties.insert(short("capabilities"), AMQPValue::FieldTable(capabilities));
    let (mechanism, response) = if c.byte() < 248 {
        ("PLAIN", b"\0guest\0guest".to_vec())
    } else {
        ("AMQPLAIN", c.bytes(32).to_vec())
    };
    let start_ok = AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
        client_properties,
        mechanism: short(mechanism),
        response: LongString::from(response),
        locale: short("en_US"),
    }));
    warren_protocol::encode::method(out, 0, &start_ok);
    if steps == 1 {
        return;
    }
    let tune_ok = AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
        channel_max: if c.rare() {
            c.pick(&[0, 2048])
        } else {
            c.pick(&[2047, 3])
        },
        frame_max: if c.rare() {
            200_000
        } else {
            c.pick(&[131072, 4096])
        },
        heartbeat: 0,
    }));
    warren_protocol::encode::method(out, 0, &tune_ok);
    if steps == 2 {
        return;
    }
    let open = AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
        virtual_host: short(if c.rare() { "nope" } else { "/" }),
    }));
    warren_protocol::encode::method(out, 0, &open);
}

/// What a client sends, chosen by `data`: its opening (protocol header, login, channels),
/// then one entry per action, each the bytes of one or more frames.
pub struct Script {
    pub opening: Vec<u8>,
    pub actions: Vec<Vec<u8>>,
}

impl Script {
    pub fn from_choices(data: &[u8]) -> Script {
        let mut c = Choices::new(data);
        let mut opening = BytesMut::new();
        // Mostly a full login, so the fuzzer spends its time after open.
        let steps = match c.byte() {
            0..=7 => 0,
            8..=11 => 1,
            12..=15 => 2,
            16..=19 => {
                opening.extend_from_slice(c.bytes(16));
                return Script {
                    opening: opening.to_vec(),
                    actions: Vec::new(),
                };
            }
            _ => 3,
        };
        login(&mut opening, steps, &mut c);
        if steps == 3 && c.byte() < 224 {
            // Most clients open a channel or two first.
            for channel in 1..=3 {
                open_channel(&mut opening, channel);
            }
        }
        let mut actions = Vec::new();
        while !c.is_empty() {
            actions.push(action(&mut c));
        }
        Script {
            opening: opening.to_vec(),
            actions,
        }
    }

    /// All of it as one byte stream.
    pub fn bytes(&self) -> Vec<u8> {
        let mut all = self.opening.clone();
        for action in &self.actions {
            all.extend_from_slice(action);
        }
        all
    }
}

pub fn open_channel(out: &mut BytesMut, channel: u16) {
    warren_protocol::encode::method(
        out,
        channel,
        &AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
    );
}

/// One action's frames.
fn action(c: &mut Choices) -> Vec<u8> {
    let mut out = BytesMut::new();
    if c.seldom() {
        // What a broken or hostile client sends: mostly the end of this connection.
        odd_action(&mut out, c);
        return out.to_vec();
    }
    let channel = c.pick(&[1, 2, 3]);
    match c.below(64) {
        0..=39 => {
            let method = method(c);
            let closes = matches!(method, AMQPClass::Channel(channel::AMQPMethod::Close(_)));
            warren_protocol::encode::method(&mut out, channel, &method);
            if closes && !c.rare() {
                open_channel(&mut out, channel);
            }
        }
        40..=61 => publish(&mut out, channel, c),
        _ => raw_frame(&mut out, 8, 0, &[]),
    }
    out.to_vec()
}

/// Frames out of place: on channel 0, on channels never opened or beyond channel_max, content
/// without a method, heartbeats on a channel, connection methods after open, any frame type,
/// bytes that are not a frame.
fn odd_action(out: &mut BytesMut, c: &mut Choices) {
    let channel = c.pick(&[0, 1, 2, 4, 2048, 65535]);
    match c.below(7) {
        0 => warren_protocol::encode::method(out, channel, &method(c)),
        1 => publish(out, channel, c),
        2 => raw_frame(out, 8, channel, &[]),
        3 => {
            let class_id = c.pick(&[60, 60, 50, 0]);
            let size = c.pick(&[0, 1, 5, 1 << 20, u64::MAX]);
            content_header(out, channel, class_id, size, c)
        }
        4 => {
            let payload = c.bytes(16);
            raw_frame(out, 3, channel, payload)
        }
        5 => warren_protocol::encode::method(out, 0, &connection_method(c)),
        _ => {
            let kind = c.byte();
            let payload = c.bytes(40);
            if kind < 16 {
                out.extend_from_slice(payload);
            } else {
                raw_frame(out, kind % 10, channel, payload);
            }
        }
    }
}
