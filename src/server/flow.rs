//! Publisher flow control under a resource alarm, as RabbitMQ does it: a connection that has
//! published stops reading its socket while an alarm is on, and — if the client announced the
//! `connection.blocked` capability — is told so with `connection.blocked` / `unblocked`.
//! Connections that only consume keep reading (their acks are what frees memory).

use amq_protocol::protocol::{AMQPClass, connection};
use tokio::sync::watch;

use super::outbox::Outbox;
use crate::alarms::Alarm;

pub struct PublisherFlow {
    alarm: watch::Receiver<Option<Alarm>>,
    /// The client asked for connection.blocked notifications.
    notify_client: bool,
    /// This connection has published: it is subject to blocking.
    publishing: bool,
    /// We told the client it is blocked.
    told_blocked: bool,
}

impl PublisherFlow {
    pub fn new(alarm: watch::Receiver<Option<Alarm>>, notify_client: bool) -> Self {
        PublisherFlow {
            alarm,
            notify_client,
            publishing: false,
            told_blocked: false,
        }
    }

    pub fn on_publish(&mut self) {
        self.publishing = true;
    }

    /// The alarm to pause for, if this connection must stop reading now.
    pub fn must_pause(&self) -> Option<Alarm> {
        if !self.publishing {
            return None;
        }
        *self.alarm.borrow()
    }

    /// Entering (or staying in) the paused state.
    pub fn blocked(&mut self, alarm: Alarm, outbox: &Outbox) {
        if self.notify_client && !self.told_blocked {
            let blocked =
                AMQPClass::Connection(connection::AMQPMethod::Blocked(connection::Blocked {
                    reason: alarm.reason().into(),
                }));
            outbox.push(|out| warren_protocol::encode::method(out, 0, &blocked));
        }
        self.told_blocked = true;
    }

    /// Reading again: tell the client if it was told it was blocked.
    pub fn unblocked(&mut self, outbox: &Outbox) {
        if self.told_blocked && self.notify_client {
            let unblocked =
                AMQPClass::Connection(connection::AMQPMethod::Unblocked(connection::Unblocked {}));
            outbox.push(|out| warren_protocol::encode::method(out, 0, &unblocked));
        }
        self.told_blocked = false;
    }

    /// Waits until the alarm state changes.
    pub async fn changed(&mut self) {
        if self.alarm.changed().await.is_err() {
            // The monitor is gone (shutdown): nothing will change any more.
            std::future::pending::<()>().await;
        }
    }
}
