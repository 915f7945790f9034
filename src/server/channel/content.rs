//! A delivery's content frames (basic.deliver's and basic.get-ok's): the message's properties
//! as they are, or with the header its queue adds (a quorum queue's `x-delivery-count`) written
//! straight into the frame. Which header is the queue's business (queue/delivered_headers.rs);
//! this file only writes frames.

use bytes::{BufMut, BytesMut};
use warren_protocol::codec::FRAME_END;
use warren_protocol::encode;

use crate::broker::message::QueuedMessage;
use crate::broker::queue::Queue;
use crate::server::outbox::Frames;

/// Bodies at least this big are shared with the outbox, not copied into it (below it, a copy
/// costs less than a piece of its own in the vectored write).
const SHARE_BODY_MIN: usize = 32 * 1024;

/// A delivery's content frames: the message's properties as they are, or with the header its
/// queue adds written straight into the frame (no copy of the properties on the way); a large
/// body goes out as the message's own bytes.
pub fn write(
    out: &mut Frames,
    channel: u16,
    queue: &Queue,
    message: &QueuedMessage,
    frame_max: u32,
) {
    let m = &message.message;
    let raw = m.properties.raw();
    let header = queue.delivery_header(message);
    if m.body.len() < SHARE_BODY_MIN {
        match header {
            // The common case, one call: properties as they are, body copied in.
            None => encode::content(out, channel, raw, &m.body, frame_max),
            Some((key, value)) => encode::content_with(
                out,
                channel,
                raw.len() + 4 + 1 + key.len() + 9,
                |out| write_properties_with(out, queue, message, key, value),
                &m.body,
                frame_max,
            ),
        }
        return;
    }
    let write_properties = |out: &mut BytesMut| match header {
        None => out.put_slice(raw),
        Some((key, value)) => write_properties_with(out, queue, message, key, value),
    };
    encode::content_header_with(out, channel, write_properties, m.body.len());
    let chunk_max = encode::body_chunk_max(frame_max);
    let mut at = 0;
    while at < m.body.len() {
        let end = m.body.len().min(at.saturating_add(chunk_max));
        encode::body_frame_start(out, channel, end - at);
        out.share(m.body.slice(at..end));
        out.put_u8(FRAME_END);
        at = end;
    }
}

/// The message's properties with the queue's header added (or replaced).
fn write_properties_with(
    out: &mut BytesMut,
    queue: &Queue,
    message: &QueuedMessage,
    key: &[u8],
    value: i64,
) {
    let properties = &message.message.properties;
    if !properties.write_with_header(out, key, value) {
        out.extend_from_slice(queue.delivered_properties(message).raw());
    }
}
