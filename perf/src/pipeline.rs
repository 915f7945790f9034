//! Pipelined setup methods on one connection, for `--declare-queues` ([`crate::declare`]) and
//! `--topic-bindings` ([`crate::bindings`]): N methods (queue.declare, queue.bind, ...) spread
//! over channels 1..=C, each channel with at most [`IN_FLIGHT_PER_CHANNEL`] unanswered, the
//! writes batched and the -oks counted as they come (a channel's replies come in the order of
//! its requests, so only the count matters).
//!
//! Nothing the broker sends can panic this: a channel.close is an error string (answered with
//! channel.close-ok), after which no more methods are sent and the other channels' unanswered
//! ones are waited for; a connection.close, a lost socket, a bad frame or [`REPLY_TIMEOUT`]
//! without any reply end it at once.

use std::time::{Duration, Instant};

use amq_protocol::protocol::{AMQPClass, channel, connection};
use warren_protocol::encode;

use crate::Error;
use crate::client::{CHANNEL, Conn, close_error};
use crate::wire::Inbound;

/// Unanswered methods per channel.
pub const IN_FLIGHT_PER_CHANNEL: usize = 64;
/// Giving up when the broker answers nothing for this long while methods are unanswered.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// What a pipelined batch achieved.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Methods answered with their -ok.
    pub answered: usize,
    /// Seconds from the first send to the end (the last -ok, when all went well).
    pub secs: f64,
    pub errors: Vec<String>,
}

impl Outcome {
    /// `answered` per second of `secs`.
    pub fn rate(&self) -> f64 {
        if self.secs > 0.0 {
            self.answered as f64 / self.secs
        } else {
            0.0
        }
    }
}

/// Opens channels 2..=`channels` on `conn` (channel 1 is open), then sends `count` methods,
/// method i being `make(i)`, and counts the replies for which `is_ok` holds. The time to open
/// the channels is not in [`Outcome::secs`]; failing to open them is an error of the outcome.
pub async fn run(
    conn: &mut Conn,
    channels: u16,
    count: usize,
    mut make: impl FnMut(usize) -> Result<AMQPClass, Error>,
    is_ok: impl Fn(&AMQPClass) -> bool,
) -> Outcome {
    if let Err(e) = conn.open_channels(channels).await {
        return Outcome {
            answered: 0,
            secs: 0.0,
            errors: vec![e.0],
        };
    }
    let mut p = Pipeline {
        // Index 0 (the connection's channel) is never used.
        unanswered: vec![0; channels as usize + 1],
        open: vec![true; channels as usize + 1],
        next: 0,
        answered: 0,
        stopping: false,
        errors: Vec::new(),
    };
    let start = Instant::now();
    loop {
        if !p.stopping
            && let Err(e) = p.fill(conn, count, &mut make).await
        {
            p.errors.push(e.0);
            break;
        }
        let waiting: usize = p.unanswered.iter().sum();
        if waiting == 0 {
            break;
        }
        match tokio::time::timeout(REPLY_TIMEOUT, conn.reader.fill()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                p.errors.push(e.0);
                break;
            }
            Err(_) => {
                p.errors.push(format!(
                    "no reply from the broker for {}s with {waiting} methods unanswered",
                    REPLY_TIMEOUT.as_secs()
                ));
                break;
            }
        }
        if let Err(e) = p.read(conn, &is_ok).await {
            p.errors.push(e.0);
            break;
        }
        let _ = conn.writer.heartbeat_if_idle().await;
    }
    Outcome {
        answered: p.answered,
        secs: start.elapsed().as_secs_f64(),
        errors: p.errors,
    }
}

struct Pipeline {
    /// Unanswered methods by channel.
    unanswered: Vec<usize>,
    /// Channels not closed by the broker.
    open: Vec<bool>,
    /// The next method to send.
    next: usize,
    answered: usize,
    /// Send nothing more (a channel was closed or something unexpected came).
    stopping: bool,
    errors: Vec<String>,
}

impl Pipeline {
    /// Tops every open channel up to [`IN_FLIGHT_PER_CHANNEL`] unanswered and sends the lot in
    /// one write.
    async fn fill(
        &mut self,
        conn: &mut Conn,
        count: usize,
        make: &mut impl FnMut(usize) -> Result<AMQPClass, Error>,
    ) -> Result<(), Error> {
        for ch in CHANNEL as usize..self.unanswered.len() {
            while self.open[ch] && self.unanswered[ch] < IN_FLIGHT_PER_CHANNEL && self.next < count
            {
                let method = match make(self.next) {
                    Ok(m) => m,
                    Err(e) => {
                        self.errors.push(e.0);
                        self.stopping = true;
                        return conn.writer.flush().await;
                    }
                };
                encode::method(&mut conn.writer.buf, ch as u16, &method);
                self.unanswered[ch] += 1;
                self.next += 1;
            }
        }
        conn.writer.flush().await
    }

    /// Handles every complete frame read so far. An error ends the batch (the connection is
    /// closed or unusable); a channel.close or an unexpected method only stops sending.
    async fn read(
        &mut self,
        conn: &mut Conn,
        is_ok: &impl Fn(&AMQPClass) -> bool,
    ) -> Result<(), Error> {
        while let Some((ch, frame)) = conn.reader.frame()? {
            let ch_index = ch as usize;
            let known = ch_index >= CHANNEL as usize && ch_index < self.unanswered.len();
            if known && !self.open[ch_index] {
                continue; // left over from a channel already closed
            }
            let method = match frame {
                Inbound::Heartbeat => continue,
                Inbound::Method(m) => m,
                other => {
                    self.unexpected(ch, known, &format!("{other:?}"));
                    continue;
                }
            };
            if let AMQPClass::Connection(connection::AMQPMethod::Close(_)) = &method {
                let ok =
                    AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {}));
                let _ = conn.writer.send(&ok, 0).await;
                return Err(close_error(&method)
                    .unwrap_or_else(|| Error::msg("connection closed by the broker")));
            }
            if known && is_ok(&method) && self.unanswered[ch_index] > 0 {
                self.unanswered[ch_index] -= 1;
                self.answered += 1;
            } else if let (true, Some(e)) = (known, close_error(&method)) {
                let ok = AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {}));
                conn.writer.send(&ok, ch).await?;
                self.errors.push(format!("channel {ch}: {e}"));
                self.open[ch_index] = false;
                self.unanswered[ch_index] = 0;
                self.stopping = true;
            } else {
                self.unexpected(ch, known, &format!("{method:?}"));
            }
        }
        Ok(())
    }

    /// Something other than the -ok: an error, and stop. The channel's unanswered methods
    /// are no longer waited for (what they will get is unknown).
    fn unexpected(&mut self, ch: u16, known: bool, what: &str) {
        if known {
            self.open[ch as usize] = false;
            self.unanswered[ch as usize] = 0;
        }
        let mut what = what.to_string();
        if what.len() > 200 {
            let mut cut = 200;
            while !what.is_char_boundary(cut) {
                cut -= 1;
            }
            what.truncate(cut);
            what.push_str("...");
        }
        self.errors
            .push(format!("channel {ch}: unexpected reply {what}"));
        self.stopping = true;
    }
}
