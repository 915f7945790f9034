//! Ending a connection: connection.close with a reply code, the wait for close-ok, the
//! linger after the close handshake during which the client closes the socket (as RabbitMQ),
//! the silent close of a refused handshake, and the 320 of a connection the broker closes.

use std::time::Duration;

use amq_protocol::protocol::{AMQPClass, connection};
use tokio::sync::watch;
use warren_protocol::AmqpError;
use warren_protocol::codec::Frame;

use super::connection::ConnectionShared;
use super::frame_reader::{FrameReader, ReadError, SILENT_CLOSE_DELAY};
use super::outbox::Outbox;

/// How long a closed connection waits for the client to close its socket (RabbitMQ: 30 s).
const CLOSED_LINGER: Duration = Duration::from_secs(30);

pub fn send_connection_close(shared: &ConnectionShared, e: &AmqpError) {
    let close = AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
        reply_code: e.code,
        reply_text: short_text(&e.text),
        class_id: e.class_id,
        method_id: e.method_id,
    }));
    shared
        .outbox
        .push(|b| warren_protocol::encode::method(b, 0, &close));
}

/// A reply text as a short string (truncated at 255 bytes on a character boundary).
pub fn short_text(text: &str) -> amq_protocol::types::ShortString {
    let mut end = text.len().min(255);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    amq_protocol::types::ShortString::from(&text[..end])
}

/// After sending connection.close, wait briefly for close-ok, discarding everything else.
pub async fn await_close_ok(reader: &mut FrameReader) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match reader.next_frame().await {
                Ok(Frame::Method {
                    channel: 0,
                    method:
                        AMQPClass::Connection(
                            connection::AMQPMethod::CloseOk(_) | connection::AMQPMethod::Close(_),
                        ),
                }) => return,
                Ok(_) => continue,
                // Undecodable bytes (often the very frame that caused the close): drop what is
                // buffered and keep waiting for close-ok in what arrives next.
                Err(ReadError::Protocol(_)) => reader.discard_buffered(),
                Err(ReadError::Closed | ReadError::SilentClose(_)) => return,
            }
        }
    })
    .await;
}

/// The close handshake is done (we sent or received connection.close-ok): as RabbitMQ, leave
/// closing the socket to the client for at most `CLOSED_LINGER`, answering any further
/// connection.close with close-ok and discarding everything else. Closing first would make a
/// client that is still sending (several threads closing at once, say) see an end of stream
/// instead of its close-ok.
pub async fn linger_until_peer_closes(
    reader: &mut FrameReader,
    outbox: &Outbox,
    mut shutdown: watch::Receiver<bool>,
) {
    let close_ok = AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {}));
    let _ = tokio::time::timeout(CLOSED_LINGER, async {
        loop {
            loop {
                match reader.decode() {
                    Ok(Some(Frame::Method {
                        channel: 0,
                        method: AMQPClass::Connection(connection::AMQPMethod::Close(_)),
                    })) => outbox.push(|b| warren_protocol::encode::method(b, 0, &close_ok)),
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => {
                        reader.discard_buffered();
                        break;
                    }
                }
            }
            tokio::select! {
                filled = reader.fill() => if filled.is_err() { return },
                _ = shutdown.changed() => return,
            }
        }
    })
    .await;
}

/// RabbitMQ's silent refusal during the handshake: nothing is sent, and the socket is closed
/// after [`SILENT_CLOSE_DELAY`]. What the peer sends meanwhile is read and dropped; a peer that
/// closes its end, or the broker's shutdown, ends the wait early (nobody is left to notice it).
pub async fn close_silently(reader: &mut FrameReader, mut shutdown: watch::Receiver<bool>) {
    let drain = async {
        while reader.fill().await.is_ok() {
            reader.discard_buffered();
        }
    };
    tokio::select! {
        _ = tokio::time::sleep(SILENT_CLOSE_DELAY) => {}
        _ = drain => {}
        _ = shutdown.wait_for(|stop| *stop) => {}
    }
}

/// The broker closed this connection (its vhost or user was deleted): 320 with its reason.
pub fn forced_close(shared: &ConnectionShared) -> ReadError {
    let text = shared
        .forced_reason
        .lock()
        .take()
        .unwrap_or_else(|| "closed by the broker".to_string());
    ReadError::Protocol(AmqpError::new(
        warren_protocol::reply::CONNECTION_FORCED,
        text,
    ))
}
