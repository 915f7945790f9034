//! A delivery's content frames (basic.deliver's and basic.get-ok's): the message's properties
//! as they are, or with the header its queue adds (a quorum queue's `x-delivery-count`) written
//! straight into the frame. Which header is the queue's business (queue/delivered_headers.rs);
//! this file only writes frames.

use bytes::BytesMut;
use warren_protocol::encode;

use crate::broker::message::QueuedMessage;
use crate::broker::queue::Queue;

/// A delivery's content frames: the message's properties as they are, or with the header its
/// queue adds written straight into the frame (no copy of the properties on the way).
pub fn write(
    out: &mut BytesMut,
    channel: u16,
    queue: &Queue,
    message: &QueuedMessage,
    frame_max: u32,
) {
    let m = &message.message;
    let raw = m.properties.raw();
    match queue.delivery_header(message) {
        None => encode::content(out, channel, raw, &m.body, frame_max),
        Some((key, value)) => encode::content_with(
            out,
            channel,
            raw.len() + 4 + 1 + key.len() + 9,
            |out| {
                if !m.properties.write_with_header(out, key, value) {
                    out.extend_from_slice(queue.delivered_properties(message).raw());
                }
            },
            &m.body,
            frame_max,
        ),
    }
}
