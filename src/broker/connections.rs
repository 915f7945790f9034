//! Open connections as the broker sees them: who (user), where (vhost), from where (peer), how
//! many channels. Used for RabbitMQ's limits (vhost and user `max-connections`, user
//! `max-channels`) and to close connections the broker no longer allows (a deleted vhost or
//! user: 320 CONNECTION_FORCED with RabbitMQ's text). The management API lists them from here.
//!
//! It also keeps the message counts of connections that closed, by vhost (the overview's and
//! Prometheus' totals include them), and of the management API's own publishes and gets.
//!
//! Knows nothing of sockets: a connection registers a [`ConnectionControl`] that the server
//! implements, and deregisters by dropping its [`Registration`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use amq_protocol::types::FieldTable;

use super::churn::Churn;
use super::message_counts::{MessageCounts, MessageFigures};
use parking_lot::Mutex;
use warren_protocol::AmqpError;

/// What the broker may ask of an open connection.
pub trait ConnectionControl: Send + Sync {
    /// Close with 320 CONNECTION_FORCED and `text` (RabbitMQ's wording, without the prefix).
    fn force_close(&self, text: String);

    /// Its open channels as they are now, by number.
    fn channels(&self) -> Vec<ChannelAbout> {
        Vec::new()
    }

    /// Bytes and socket calls so far, each way.
    fn traffic(&self) -> Traffic {
        Traffic::default()
    }

    /// The message counts of its channels, open and closed.
    fn message_figures(&self) -> MessageFigures {
        MessageFigures::default()
    }

    /// Each open channel's message counters, by number.
    fn channel_counts(&self) -> Vec<(u16, Arc<MessageCounts>)> {
        Vec::new()
    }
}

/// A connection's socket traffic, in RabbitMQ's terms.
#[derive(Debug, Clone, Copy, Default)]
pub struct Traffic {
    /// Bytes read from the peer, and the reads that brought them.
    pub recv_oct: u64,
    pub recv_cnt: u64,
    /// Bytes written to the peer, the writes, and bytes waiting to be written.
    pub send_oct: u64,
    pub send_cnt: u64,
    pub send_pend: u64,
}

/// A channel as the management API shows it.
#[derive(Debug, Clone, Default)]
pub struct ChannelAbout {
    pub number: u16,
    /// basic.qos global=false: what consumers started from now on get.
    pub prefetch_count: u32,
    /// basic.qos global=true.
    pub global_prefetch_count: u32,
    pub confirm: bool,
    pub transactional: bool,
    /// Deliveries not yet acknowledged.
    pub unacked: u32,
    pub consumers: Vec<ConsumerAbout>,
    /// The channel's message counters (the same object as long as the channel is open).
    pub counts: Arc<MessageCounts>,
}

/// A consumer as the management API shows it.
#[derive(Debug, Clone)]
pub struct ConsumerAbout {
    pub tag: String,
    pub queue: Arc<str>,
    pub ack_required: bool,
    pub exclusive: bool,
    pub prefetch_count: u32,
    /// `x-priority` (0 when none was given).
    pub priority: i32,
}

/// One open connection.
pub struct ConnectionEntry {
    pub id: u64,
    pub user: String,
    pub vhost: String,
    pub peer: SocketAddr,
    /// Open channels on this connection.
    pub channels: AtomicU32,
    /// What the handshake settled, for the management API.
    pub about: ConnectionAbout,
    control: Arc<dyn ConnectionControl>,
}

/// A connection as its handshake left it: what RabbitMQ's management API shows of it.
#[derive(Debug, Clone)]
pub struct ConnectionAbout {
    /// The client's end of the socket.
    pub peer: SocketAddr,
    /// The broker's end of the socket.
    pub local: Option<SocketAddr>,
    pub client_properties: FieldTable,
    pub auth_mechanism: String,
    pub channel_max: u16,
    pub frame_max: u32,
    /// Negotiated heartbeat, seconds.
    pub heartbeat: u16,
    pub tls: bool,
    /// Milliseconds since the Unix epoch.
    pub connected_at: u64,
}

impl ConnectionEntry {
    /// RabbitMQ's name for a connection: `peer -> local`.
    pub fn name(&self) -> String {
        match self.about.local {
            Some(local) => format!("{} -> {local}", self.peer),
            None => self.peer.to_string(),
        }
    }

    /// Asks the connection to close (320 CONNECTION_FORCED with `text`).
    pub fn force_close(&self, text: String) {
        self.control.force_close(text);
    }

    pub fn channel_list(&self) -> Vec<ChannelAbout> {
        self.control.channels()
    }

    pub fn traffic(&self) -> Traffic {
        self.control.traffic()
    }

    pub fn message_figures(&self) -> MessageFigures {
        self.control.message_figures()
    }

    pub fn channel_counts(&self) -> Vec<(u16, Arc<MessageCounts>)> {
        self.control.channel_counts()
    }
}

#[derive(Default)]
pub struct Connections {
    open: Mutex<HashMap<u64, Arc<ConnectionEntry>>>,
    /// The message counts of connections that closed. Taken after `open` (a closing
    /// connection's counts move here under both locks, so readers holding `open` never see
    /// them twice or not at all).
    closed: Mutex<ClosedCounts>,
    /// Counts connections opened and closed (the broker's counters).
    churn: Arc<Churn>,
}

/// Message counts no open connection holds any more.
#[derive(Default)]
struct ClosedCounts {
    /// By vhost: of connections that closed, and of the management API's publishes and gets.
    by_vhost: HashMap<String, MessageFigures>,
    /// Of vhosts that were deleted (for the node's totals, which never go down).
    gone: MessageFigures,
}

/// The limits a new connection is checked against, read by the caller from the vhost and user.
pub struct ConnectionLimits {
    pub vhost_max_connections: Option<u64>,
    pub user_max_connections: Option<u64>,
}

/// Holds a connection's place; dropping it deregisters the connection.
pub struct Registration {
    connections: Arc<Connections>,
    pub entry: Arc<ConnectionEntry>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut open = self.connections.open.lock();
        open.remove(&self.entry.id);
        // Under the lock that readers of the totals take: they never see a count twice or
        // not at all.
        let figures = self.entry.message_figures();
        let mut closed = self.connections.closed.lock();
        closed
            .by_vhost
            .entry(self.entry.vhost.clone())
            .or_default()
            .add(&figures);
        drop(closed);
        drop(open);
        Churn::bump(&self.connections.churn.connection_closed);
    }
}

impl Connections {
    pub fn new(churn: Arc<Churn>) -> Connections {
        Connections {
            open: Mutex::default(),
            closed: Mutex::default(),
            churn,
        }
    }

    /// Every connection's message counts since the start, open and closed, in every vhost
    /// there ever was.
    pub fn message_totals(&self) -> MessageFigures {
        let open = self.open.lock();
        let closed = self.closed.lock();
        let mut totals = closed.gone;
        for figures in closed.by_vhost.values() {
            totals.add(figures);
        }
        drop(closed);
        for entry in open.values() {
            totals.add(&entry.message_figures());
        }
        totals
    }

    /// The message counts of each vhost's connections since the start, open and closed.
    pub fn message_totals_by_vhost(&self) -> HashMap<String, MessageFigures> {
        let open = self.open.lock();
        let mut totals = self.closed.lock().by_vhost.clone();
        for entry in open.values() {
            totals
                .entry(entry.vhost.clone())
                .or_default()
                .add(&entry.message_figures());
        }
        totals
    }

    /// Counts messages published or got through the management API (no connection; as on
    /// RabbitMQ, whose API does it on a connection of its own, they count in the totals).
    pub fn count_detached(&self, vhost: &str, figures: &MessageFigures) {
        let mut closed = self.closed.lock();
        match closed.by_vhost.get_mut(vhost) {
            Some(mine) => mine.add(figures),
            None => {
                closed.by_vhost.insert(vhost.to_string(), *figures);
            }
        }
    }

    /// Moves the closed counts of vhosts that no longer `exist` (and have no open
    /// connection) into the node's totals of deleted vhosts, so the map does not grow with
    /// vhosts created and deleted.
    pub fn forget_deleted_vhosts(&self, exists: impl Fn(&str) -> bool) {
        let open = self.open.lock();
        let mut closed = self.closed.lock();
        let closed = &mut *closed;
        closed.by_vhost.retain(|vhost, figures| {
            let keep = exists(vhost) || open.values().any(|c| &c.vhost == vhost);
            if !keep {
                closed.gone.add(figures);
            }
            keep
        });
    }

    /// Registers a connection that passed connection.open's other checks, unless the vhost's
    /// or the user's connection limit is reached (530, RabbitMQ's texts). Counting and
    /// registering happen under one lock, so concurrent opens cannot both take the last slot.
    pub fn register(
        self: &Arc<Self>,
        id: u64,
        user: &str,
        vhost: &str,
        limits: ConnectionLimits,
        about: ConnectionAbout,
        control: Arc<dyn ConnectionControl>,
    ) -> Result<Registration, AmqpError> {
        let mut open = self.open.lock();
        if let Some(limit) = limits.vhost_max_connections {
            let count = open.values().filter(|c| c.vhost == vhost).count() as u64;
            if count >= limit {
                return Err(AmqpError::not_allowed(format_args!(
                    "access to vhost '{vhost}' refused for user '{user}': connection limit ({limit}) is reached"
                )));
            }
        }
        if let Some(limit) = limits.user_max_connections {
            let count = open.values().filter(|c| c.user == user).count() as u64;
            if count >= limit {
                return Err(AmqpError::not_allowed(format_args!(
                    "connection refused for user '{user}': user connection limit ({limit}) is reached"
                )));
            }
        }
        let entry = Arc::new(ConnectionEntry {
            id,
            user: user.to_string(),
            vhost: vhost.to_string(),
            peer: about.peer,
            channels: AtomicU32::new(0),
            about,
            control,
        });
        open.insert(id, entry.clone());
        Churn::bump(&self.churn.connection_created);
        Ok(Registration {
            connections: self.clone(),
            entry,
        })
    }

    /// Open channels of all of `user`'s connections.
    pub fn channels_of_user(&self, user: &str) -> u64 {
        self.open
            .lock()
            .values()
            .filter(|c| c.user == user)
            .map(|c| c.channels.load(Ordering::Relaxed) as u64)
            .sum()
    }

    pub fn list(&self) -> Vec<Arc<ConnectionEntry>> {
        let mut all: Vec<_> = self.open.lock().values().cloned().collect();
        all.sort_by_key(|c| c.id);
        all
    }

    pub fn count_in_vhost(&self, vhost: &str) -> usize {
        self.open
            .lock()
            .values()
            .filter(|c| c.vhost == vhost)
            .count()
    }

    /// Asks every connection `matching` to close (320) with `text`; returns how many.
    pub fn close_where(&self, matching: impl Fn(&ConnectionEntry) -> bool, text: &str) -> usize {
        let chosen: Vec<_> = self
            .open
            .lock()
            .values()
            .filter(|c| matching(c))
            .cloned()
            .collect();
        for c in &chosen {
            c.control.force_close(text.to_string());
        }
        chosen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Recorder(Mutex<Vec<String>>);
    impl ConnectionControl for Recorder {
        fn force_close(&self, text: String) {
            self.0.lock().push(text);
        }
    }

    fn about() -> ConnectionAbout {
        ConnectionAbout {
            peer: SocketAddr::from(([127, 0, 0, 1], 1)),
            local: None,
            client_properties: FieldTable::default(),
            auth_mechanism: "PLAIN".into(),
            channel_max: 0,
            frame_max: 0,
            heartbeat: 0,
            tls: false,
            connected_at: 0,
        }
    }

    /// A connection whose channels published `0` messages.
    struct Published(u64);
    impl ConnectionControl for Published {
        fn force_close(&self, _: String) {}
        fn message_figures(&self) -> MessageFigures {
            MessageFigures {
                publish: self.0,
                ..MessageFigures::default()
            }
        }
    }

    #[test]
    fn a_closed_connections_counts_stay_in_its_vhosts_totals_and_the_nodes() {
        let connections = Arc::new(Connections::default());
        let no_limits = || ConnectionLimits {
            vhost_max_connections: None,
            user_max_connections: None,
        };
        let register = |id, vhost, published| {
            connections
                .register(
                    id,
                    "u",
                    vhost,
                    no_limits(),
                    about(),
                    Arc::new(Published(published)),
                )
                .unwrap()
        };
        let first = register(1, "a", 3);
        let _open = register(2, "b", 4);
        connections.count_detached(
            "a",
            &MessageFigures {
                publish: 1,
                ..MessageFigures::default()
            },
        );
        assert_eq!(connections.message_totals().publish, 8);
        drop(first);
        assert_eq!(connections.message_totals_by_vhost()["a"].publish, 4);
        assert_eq!(connections.message_totals_by_vhost()["b"].publish, 4);
        connections.forget_deleted_vhosts(|vhost| vhost == "b");
        assert!(!connections.message_totals_by_vhost().contains_key("a"));
        assert_eq!(connections.message_totals().publish, 8);
    }

    #[test]
    fn limits_count_open_connections_and_free_on_drop() {
        let connections = Arc::new(Connections::default());
        let control = Arc::new(Recorder(Mutex::new(Vec::new())));
        let limits = || ConnectionLimits {
            vhost_max_connections: Some(1),
            user_max_connections: None,
        };
        let first = connections
            .register(1, "u", "v", limits(), about(), control.clone())
            .unwrap();
        let refused = connections
            .register(2, "w", "v", limits(), about(), control.clone())
            .err()
            .unwrap();
        assert_eq!(
            refused.text,
            "NOT_ALLOWED - access to vhost 'v' refused for user 'w': connection limit (1) is reached"
        );
        let by_user = ConnectionLimits {
            vhost_max_connections: None,
            user_max_connections: Some(1),
        };
        let refused = connections
            .register(3, "u", "other", by_user, about(), control.clone())
            .err()
            .unwrap();
        assert_eq!(
            refused.text,
            "NOT_ALLOWED - connection refused for user 'u': user connection limit (1) is reached"
        );
        assert_eq!(
            connections.close_where(|c| c.vhost == "v", "vhost 'v' is deleted"),
            1
        );
        assert_eq!(control.0.lock().as_slice(), ["vhost 'v' is deleted"]);
        drop(first);
        assert!(
            connections
                .register(4, "w", "v", limits(), about(), control)
                .is_ok()
        );
    }
}
