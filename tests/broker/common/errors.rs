//! The AMQP errors lapin reports (a channel.close or connection.close from the broker), and
//! RabbitMQ's texts for the errors many tests expect.

use futures_lite::StreamExt;
use lapin::{Channel, ErrorKind};

use super::{WAIT, consume_no_ack, declare_tmp_queue};

/// The AMQP reply code and text carried by a lapin error, if it is one.
pub fn amqp_error(err: &lapin::Error) -> Option<(u16, String)> {
    match err.kind() {
        ErrorKind::ProtocolError(e) => Some((e.get_id(), e.get_message().as_str().to_string())),
        _ => None,
    }
}

/// Unwraps the AMQP error (code, text) of a failed lapin call.
#[track_caller]
pub fn expect_amqp_error<T: std::fmt::Debug>(res: lapin::Result<T>) -> (u16, String) {
    match res {
        Ok(v) => panic!("expected an AMQP error, got Ok({v:?})"),
        Err(e) => amqp_error(&e).unwrap_or_else(|| panic!("expected an AMQP error, got {e:?}")),
    }
}

/// The next item of a consumer that is expected to fail with an AMQP error
/// (e.g. its channel was closed by the broker).
pub async fn consumer_error(consumer: &mut lapin::Consumer) -> (u16, String) {
    loop {
        match tokio::time::timeout(WAIT, consumer.next()).await {
            Err(_) => panic!("consumer saw no error within {WAIT:?}"),
            Ok(None) => panic!("consumer ended without an error"),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => {
                return amqp_error(&e).unwrap_or_else(|| panic!("non-AMQP consumer error {e:?}"));
            }
        }
    }
}

/// Watches a channel for a broker-initiated channel.close.
///
/// lapin reports a channel.close to the channel's consumers, so this keeps
/// an idle consumer on an empty exclusive queue. Unlike "do another RPC and
/// look at its error", this does not race with lapin processing the close.
pub struct ChannelErrorWatch(lapin::Consumer);

impl ChannelErrorWatch {
    pub async fn new(ch: &Channel) -> ChannelErrorWatch {
        let q = declare_tmp_queue(ch).await;
        ChannelErrorWatch(consume_no_ack(ch, &q).await)
    }

    /// The (code, text) of the channel.close the broker sends.
    pub async fn error(mut self) -> (u16, String) {
        consumer_error(&mut self.0).await
    }
}

/// RabbitMQ's 404 for a queue that does not exist.
pub fn no_queue(queue: &str) -> (u16, String) {
    (404, format!("NOT_FOUND - no queue '{queue}' in vhost '/'"))
}

/// RabbitMQ's 404 for an exchange that does not exist.
pub fn no_exchange(exchange: &str) -> (u16, String) {
    (
        404,
        format!("NOT_FOUND - no exchange '{exchange}' in vhost '/'"),
    )
}

/// RabbitMQ's 406 for a queue argument it refuses: `reason` is the Erlang term it names.
pub fn invalid_queue_arg(queue: &str, arg: &str, reason: &str) -> (u16, String) {
    (
        406,
        format!(
            "PRECONDITION_FAILED - invalid arg '{arg}' for queue '{queue}' in vhost '/': {reason}"
        ),
    )
}

/// RabbitMQ's 406 for redeclaring a queue or exchange (`what`) with another `arg`.
pub fn inequivalent_arg(
    what: &str,
    name: &str,
    arg: &str,
    received: &str,
    current: &str,
) -> (u16, String) {
    (
        406,
        format!(
            "PRECONDITION_FAILED - inequivalent arg '{arg}' for {what} '{name}' in vhost '/': received '{received}' but current is '{current}'"
        ),
    )
}
