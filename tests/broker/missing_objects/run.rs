//! Running the table: raw connections, the setup steps, the call, and comparing what came back
//! with the row's expectation.

use super::*;

// ---------------------------------------------------------------------------
// Running a row
// ---------------------------------------------------------------------------

/// A raw connection plus the methods read while waiting for another channel's.
struct Conn {
    raw: RawClient,
    /// Methods that arrived on a channel nobody was waiting on yet, oldest first (e.g. the
    /// basic.cancel for channel 1 that comes while channel 2 waits for its queue.delete-ok).
    stash: Vec<(u16, AMQPClass)>,
}

impl Conn {
    async fn open(broker: &TestBroker, channels: &[u16]) -> Conn {
        let mut raw = broker.raw_open().await;
        for &ch in channels {
            raw.open_channel(ch).await;
        }
        Conn {
            raw,
            stash: Vec::new(),
        }
    }

    /// The next method on channel `ch` or on channel 0, skipping content frames (of a
    /// basic.return).
    async fn next_method_on(&mut self, ch: u16) -> (u16, AMQPClass) {
        self.next_method_within(ch, WAIT)
            .await
            .unwrap_or_else(|| panic!("no method on channel {ch} within {WAIT:?}"))
    }

    /// Like [`Conn::next_method_on`], `None` if nothing comes within `wait`.
    async fn next_method_within(&mut self, ch: u16, wait: Duration) -> Option<(u16, AMQPClass)> {
        if let Some(i) = self.stash.iter().position(|(c, _)| *c == ch || *c == 0) {
            return Some(self.stash.remove(i));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.raw.recv_within(left).await {
                Recv::Frame(AMQPFrame::Method(c, m)) if c == ch || c == 0 => return Some((c, m)),
                Recv::Frame(AMQPFrame::Method(c, m)) => self.stash.push((c, m)),
                Recv::Frame(_) => continue,
                Recv::Timeout => return None,
                Recv::Closed => panic!("connection closed while waiting on channel {ch}"),
            }
        }
    }
}

/// The connections of one row.
pub(super) struct World<'a> {
    broker: &'a TestBroker,
    names: &'a Names,
    main: Conn,
    other: Option<Conn>,
}

impl<'a> World<'a> {
    pub(super) async fn open(broker: &'a TestBroker, names: &'a Names) -> World<'a> {
        World {
            broker,
            names,
            main: Conn::open(broker, &[1, 2]).await,
            other: None,
        }
    }

    /// The client and channel a step runs on.
    async fn client(&mut self, on: On) -> (&mut Conn, u16) {
        match on {
            On::Same => (&mut self.main, 1),
            On::Other => (&mut self.main, 2),
            On::OtherConn => {
                if self.other.is_none() {
                    self.other = Some(Conn::open(self.broker, &[1]).await);
                }
                (self.other.as_mut().unwrap(), 1)
            }
        }
    }

    /// Runs a setup step; panics unless the broker answers as it must.
    pub(super) async fn step(&mut self, step: Step) {
        let names = self.names;
        let (conn, ch) = self.client(step.on()).await;
        match step {
            AwaitServerCancel(_, tag) => match conn.next_method_on(ch).await {
                (c, AMQPClass::Basic(basic::AMQPMethod::Cancel(cancel)))
                    if c == ch && cancel.consumer_tag.as_str() == names.get(tag) => {}
                other => panic!("setup {step:?}: expected basic.cancel, got {other:?}"),
            },
            Publish(_, x, key) => {
                let (x, key) = (names.get(x), names.key(key));
                conn.raw.publish(ch, &x, &key, false, false, b"setup").await;
                conn.raw.send_method(ch, sync_method()).await;
                let (c, reply) = conn.next_method_on(ch).await;
                assert!(
                    c == ch && is_sync_reply(&reply),
                    "setup {step:?} got {reply:?} on channel {c}"
                );
            }
            _ => {
                let request = step.request(names);
                let sent = format!("{request:?}");
                conn.raw.send_method(ch, request).await;
                let (c, reply) = conn.next_method_on(ch).await;
                assert!(
                    c == ch && is_ok_reply(&reply),
                    "setup {step:?} ({sent}) got {reply:?} on channel {c}"
                );
            }
        }
    }

    /// Sends the row's call (and a sync method behind it) and observes what follows.
    ///
    /// RabbitMQ may send consume-ok after the reply to a later method (the queue process sends
    /// it), so when the sync reply comes first the call's reply is still waited for, `late` long.
    pub(super) async fn call(&mut self, call: Call, late: Duration) -> Outcome {
        let conn = &mut self.main;
        match call {
            Call::Method(m) => conn.raw.send_method(1, m).await,
            Call::Publish(x, rk, mandatory) => {
                conn.raw.publish(1, &x, &rk, mandatory, false, b"").await
            }
        }
        conn.raw.send_method(1, sync_method()).await;
        let (ch, first) = conn.next_method_on(1).await;
        match (ch, first) {
            (1, m) if is_sync_reply(&m) => match conn.next_method_within(1, late).await {
                None => Outcome::Silent,
                Some((1, reply)) => Outcome::Reply(reply),
                Some(other) => Outcome::Broken(format!("after the sync reply: {other:?}")),
            },
            (1, AMQPClass::Channel(channel::AMQPMethod::Close(c))) => {
                conn.raw.send_method(1, channel_close_ok()).await;
                let outcome = Outcome::ChannelClose(
                    c.reply_code,
                    c.reply_text.as_str().to_string(),
                    c.class_id,
                    c.method_id,
                );
                // Only the channel closed: it can be opened again on the same connection.
                conn.raw.send_method(1, channel_open()).await;
                match conn.next_method_on(1).await {
                    (1, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))) => outcome,
                    other => Outcome::Broken(format!("{outcome:?}, then reopening gave {other:?}")),
                }
            }
            (0, AMQPClass::Connection(connection::AMQPMethod::Close(c))) => {
                conn.raw.send_method(0, connection_close_ok()).await;
                Outcome::ConnectionClose(
                    c.reply_code,
                    c.reply_text.as_str().to_string(),
                    c.class_id,
                    c.method_id,
                )
            }
            (1, reply) => {
                let outcome = match reply {
                    AMQPClass::Basic(basic::AMQPMethod::Return(r)) => {
                        Outcome::Returned(r.reply_code, r.reply_text.as_str().to_string())
                    }
                    reply => Outcome::Reply(reply),
                };
                match conn.next_method_on(1).await {
                    (1, m) if is_sync_reply(&m) => outcome,
                    other => Outcome::Broken(format!("{outcome:?}, then {other:?}")),
                }
            }
            other => Outcome::Broken(format!("unexpected {other:?}")),
        }
    }
}

/// Whether `m` is the -ok of a setup method.
fn is_ok_reply(m: &AMQPClass) -> bool {
    matches!(
        m,
        AMQPClass::Queue(
            queue::AMQPMethod::DeclareOk(_)
                | queue::AMQPMethod::DeleteOk(_)
                | queue::AMQPMethod::BindOk(_)
                | queue::AMQPMethod::UnbindOk(_)
        ) | AMQPClass::Exchange(
            exchange::AMQPMethod::DeclareOk(_)
                | exchange::AMQPMethod::DeleteOk(_)
                | exchange::AMQPMethod::BindOk(_)
        ) | AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(_) | basic::AMQPMethod::CancelOk(_))
            | AMQPClass::Tx(tx::AMQPMethod::SelectOk(_))
    )
}

/// Deletes whatever a row may have left behind (on RabbitMQ, which outlives the test). An
/// exclusive queue of a connection that is still going away refuses (405); it goes by itself.
pub(super) async fn clean_up(broker: &TestBroker, names: &Names) {
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    let deletes = ["q", "q2"]
        .map(|q| queue_delete(&names.get(q), false, false, false))
        .into_iter()
        .chain(["x", "x2"].map(|x| exchange_delete(&names.get(x), false, false)));
    for delete in deletes {
        if let (1, AMQPClass::Channel(channel::AMQPMethod::Close(_))) = raw.rpc(1, delete).await {
            raw.send_method(1, channel_close_ok()).await;
            raw.open_channel(1).await;
        }
    }
}
