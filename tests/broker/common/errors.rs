//! The AMQP errors lapin reports (a channel.close or connection.close from the broker), and
//! RabbitMQ's (code, text) for the errors tests expect: one function per reply code, which
//! writes the text the way RabbitMQ does, and the common texts in full.

use std::fmt::Display;
use std::time::Duration;

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

/// The AMQP error a consumer is expected to end with (e.g. its channel was closed by the
/// broker), skipping any deliveries before it; fails the test after [`WAIT`].
pub async fn consumer_error(consumer: &mut lapin::Consumer) -> (u16, String) {
    consumer_error_within(consumer, WAIT).await
}

/// Like [`consumer_error`], waiting at most `within` in all.
pub async fn consumer_error_within(
    consumer: &mut lapin::Consumer,
    within: Duration,
) -> (u16, String) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, consumer.next()).await {
            Err(_) => panic!("consumer saw no error within {within:?}"),
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

/// RabbitMQ's reply text: the reply code's name in the AMQP spec, " - ", then what happened.
fn reply(code: u16, name: &str, detail: impl Display) -> (u16, String) {
    (code, format!("{name} - {detail}"))
}

/// 403 ACCESS_REFUSED with this detail.
pub fn access_refused(detail: impl Display) -> (u16, String) {
    reply(403, "ACCESS_REFUSED", detail)
}

/// 404 NOT_FOUND with this detail.
pub fn not_found(detail: impl Display) -> (u16, String) {
    reply(404, "NOT_FOUND", detail)
}

/// 405 RESOURCE_LOCKED with this detail.
pub fn resource_locked(detail: impl Display) -> (u16, String) {
    reply(405, "RESOURCE_LOCKED", detail)
}

/// 406 PRECONDITION_FAILED with this detail.
pub fn precondition_failed(detail: impl Display) -> (u16, String) {
    reply(406, "PRECONDITION_FAILED", detail)
}

/// 503 COMMAND_INVALID with this detail.
pub fn command_invalid(detail: impl Display) -> (u16, String) {
    reply(503, "COMMAND_INVALID", detail)
}

/// 504 CHANNEL_ERROR with this detail.
pub fn channel_error(detail: impl Display) -> (u16, String) {
    reply(504, "CHANNEL_ERROR", detail)
}

/// 530 NOT_ALLOWED with this detail.
pub fn not_allowed(detail: impl Display) -> (u16, String) {
    reply(530, "NOT_ALLOWED", detail)
}

/// 540 NOT_IMPLEMENTED with this detail.
pub fn not_implemented(detail: impl Display) -> (u16, String) {
    reply(540, "NOT_IMPLEMENTED", detail)
}

/// A connection.close or channel.close as [`RawClient::expect_connection_close`] returns it: the
/// (code, text) of `reply`, and the class and method ids of the method that failed.
///
/// [`RawClient::expect_connection_close`]: super::RawClient::expect_connection_close
pub fn expected_close(
    reply: (u16, String),
    class_id: u16,
    method_id: u16,
) -> (u16, String, u16, u16) {
    let (code, text) = reply;
    (code, text, class_id, method_id)
}

/// RabbitMQ's 404 for a queue that does not exist.
pub fn no_queue(queue: &str) -> (u16, String) {
    not_found(format!("no queue '{queue}' in vhost '/'"))
}

/// RabbitMQ's 404 for an exchange that does not exist.
pub fn no_exchange(exchange: &str) -> (u16, String) {
    not_found(format!("no exchange '{exchange}' in vhost '/'"))
}

/// RabbitMQ's 406 for a queue argument it refuses: `reason` is the Erlang term it names.
pub fn invalid_queue_arg(queue: &str, arg: &str, reason: &str) -> (u16, String) {
    precondition_failed(format!(
        "invalid arg '{arg}' for queue '{queue}' in vhost '/': {reason}"
    ))
}

/// RabbitMQ's 406 for redeclaring a queue or exchange (`what`) with another `arg`.
pub fn inequivalent_arg(
    what: &str,
    name: &str,
    arg: &str,
    received: &str,
    current: &str,
) -> (u16, String) {
    precondition_failed(format!(
        "inequivalent arg '{arg}' for {what} '{name}' in vhost '/': received '{received}' but current is '{current}'"
    ))
}
