//! What RabbitMQ 3.10 asks of a channel that uses a stream: consumers must acknowledge
//! manually and have a prefetch (basic.qos), `x-stream-offset` must be one of its forms, and
//! basic.get is not for streams. The texts are the reference broker's.

use amq_protocol::protocol::basic as b;
use warren_protocol::{AmqpError, method};

use crate::broker::names;
use crate::broker::queue::Queue;
use crate::broker::queue::stream::{StreamStart, epoch_ms};

/// Checks a basic.consume on a stream; returns where the consumer starts.
pub fn consume_start(queue: &Queue, m: &b::Consume, prefetch: u32) -> Result<StreamStart, AmqpError> {
    let what = names::queue(&queue.name, &queue.vhost);
    if m.no_ack {
        return Err(AmqpError::not_implemented(format_args!(
            "automatic acknowledgement not supported by stream queues {what}"
        ))
        .on_method(method::BASIC_CONSUME));
    }
    if prefetch == 0 {
        return Err(AmqpError::precondition(format_args!(
            "consumer prefetch count is not set for '{what}'"
        ))
        .on_method(method::BASIC_CONSUME));
    }
    StreamStart::parse(&m.arguments, epoch_ms())
        .map_err(|reason| AmqpError::precondition(reason).on_method(method::BASIC_CONSUME))
}

/// basic.get on a stream.
pub fn get_refused(queue: &Queue) -> AmqpError {
    AmqpError::not_implemented(format_args!(
        "basic.get not supported by stream queues {}",
        names::queue(&queue.name, &queue.vhost)
    ))
    .on_method(method::BASIC_GET)
}
