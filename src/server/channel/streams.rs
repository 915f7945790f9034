//! What RabbitMQ 3.10 asks of a channel that uses a stream, with its texts: consumers need a
//! prefetch (basic.qos) and manual acknowledgement, `x-stream-offset` must be one of its forms
//! (and is refused on other queue types), and basic.get, basic.nack / basic.reject and
//! queue.purge are not for streams (540, which closes the connection).
//!
//! One difference on purpose: where RabbitMQ crashes (541 INTERNAL_ERROR) on an
//! `x-stream-offset` it cannot read (a bool, a float, a word other than first/last/next),
//! warren refuses it with the 406 RabbitMQ gives other bad offsets.

use amq_protocol::protocol::basic as b;
use amq_protocol::types::AMQPValue;
use warren_protocol::{AmqpError, method};

use crate::broker::field_display::{type_name, value};
use crate::broker::names;
use crate::broker::queue::Queue;
use crate::broker::queue::stream::{StreamStart, epoch_ms};

/// Checks a basic.consume against the queue's type; for a stream, returns where the consumer
/// starts (`None` for other queues).
pub fn consume_start(
    queue: &Queue,
    m: &b::Consume,
    prefetch: u32,
) -> Result<Option<StreamStart>, AmqpError> {
    let what = names::queue(&queue.name, &queue.vhost);
    let offset = m.arguments.inner().get("x-stream-offset");
    if !queue.is_stream() {
        return match offset {
            None => Ok(None),
            Some(_) => Err(AmqpError::precondition(format_args!(
                "invalid arg 'x-stream-offset' for {what} of queue type {}",
                queue.options.arguments.queue_type.module()
            ))
            .on_method(method::BASIC_CONSUME)),
        };
    }
    if prefetch == 0 {
        return Err(AmqpError::precondition(format_args!(
            "consumer prefetch count is not set for '{what}'"
        ))
        .on_method(method::BASIC_CONSUME));
    }
    if m.no_ack {
        return Err(AmqpError::not_implemented(format_args!(
            "automatic acknowledgement not supported by stream queues {what}"
        ))
        .on_method(method::BASIC_CONSUME));
    }
    StreamStart::parse(offset, epoch_ms())
        .map(Some)
        .map_err(|bad| {
            AmqpError::precondition(format_args!(
                "invalid arg 'x-stream-offset' for {what}: {{invalid_stream_offset_arg,{{{},{}}}}}",
                type_name(bad),
                erlang_value(bad)
            ))
            .on_method(method::BASIC_CONSUME)
        })
}

/// An operation streams do not support, as RabbitMQ words it (`basic.get not supported by
/// stream queues queue 'q' in vhost '/'`).
pub fn not_supported(operation: &str, queue: &Queue) -> AmqpError {
    AmqpError::not_implemented(format_args!(
        "{operation} not supported by stream queues {}",
        names::queue(&queue.name, &queue.vhost)
    ))
}

/// A value as Erlang prints it in RabbitMQ's reason: strings as binaries (`<<"10x">>`).
fn erlang_value(v: &AMQPValue) -> String {
    match v {
        AMQPValue::LongString(_) | AMQPValue::ShortString(_) | AMQPValue::ByteArray(_) => {
            format!("<<\"{}\">>", value(v))
        }
        AMQPValue::Void => "undefined".into(),
        other => value(other),
    }
}
