//! Allocation counts on the publish hot path, measured with a counting global allocator.
//! The broker's hot-path rule: decoding basic.publish + content header + body, and basic.ack,
//! allocates nothing — the body and the properties are slices of the read buffer.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use amq_protocol::protocol::{AMQPClass, BasicProperties, basic};
use amq_protocol::types::{AMQPValue, FieldTable};
use bytes::BytesMut;
use warren_protocol::codec::decode_frame;
use warren_protocol::content::ContentAssembler;
use warren_protocol::encode;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const MESSAGES: usize = 1000;

/// 1000 publishes (method + header with typical properties + 16-byte body) in one buffer.
fn publish_stream() -> BytesMut {
    let publish = AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
        exchange: "amq.topic".into(),
        routing_key: "orders.created.eu".into(),
        mandatory: false,
        immediate: false,
    }));
    let mut headers = FieldTable::default();
    headers.insert("tenant".into(), AMQPValue::LongString("acme".into()));
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_headers(headers)
        .with_message_id("m-1".into());
    let raw = encode::properties(&props);
    let mut out = BytesMut::new();
    for _ in 0..MESSAGES {
        encode::method(&mut out, 1, &publish);
        encode::content(&mut out, 1, &raw, b"0123456789abcdef", 131072);
    }
    out
}

fn ack_stream() -> BytesMut {
    let mut out = BytesMut::new();
    for tag in 1..=MESSAGES as u64 {
        let ack = AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
            delivery_tag: tag,
            multiple: false,
        }));
        encode::method(&mut out, 1, &ack);
    }
    out
}

#[test]
fn decoding_publishes_and_acks_allocates_nothing_per_message() {
    let mut publishes = publish_stream();
    let mut acks = ack_stream();
    let mut assembler = ContentAssembler::default();
    let mut completed = 0;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    while let Some(frame) = decode_frame(&mut publishes, 131072).unwrap() {
        use warren_protocol::Frame;
        match frame {
            Frame::Publish { publish, .. } => assembler.start(publish),
            Frame::Header {
                class_id,
                body_size,
                properties,
                ..
            } => {
                if assembler
                    .header(class_id, body_size, properties)
                    .unwrap()
                    .is_some()
                {
                    completed += 1;
                }
            }
            Frame::Body { payload, .. } => {
                if assembler.body(payload).unwrap().is_some() {
                    completed += 1;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let mid = ALLOCATIONS.load(Ordering::Relaxed);
    while decode_frame(&mut acks, 131072).unwrap().is_some() {}
    let publishes_only = (mid - before) as f64 / MESSAGES as f64;
    println!("allocations per publish (method + header + body) decoded: {publishes_only}");
    let per_message = (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / MESSAGES as f64;
    assert_eq!(completed, MESSAGES);
    println!("allocations per publish+ack decoded: {per_message}");
    // The first split of the read buffer allocates its shared header once; nothing per message.
    assert!(per_message < 0.01, "{per_message} allocations per message");
}
