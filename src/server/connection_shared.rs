//! The parts of a connection that others reach ([`ConnectionShared`]: queues deliver into its
//! outbox, the store's writer thread confirms on its channels), and what the broker asks of it
//! through [`ConnectionControl`]: close it (a deleted vhost or user, the management API), and
//! what the management API shows of it (its channels, socket traffic and message counts).
//! Shared state only; the connection task (connection.rs) acts on a close request.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use parking_lot::Mutex;

use super::channel::ChannelShared;
use super::frame_reader::ReadCounts;
use super::outbox::Outbox;
use crate::broker::connections::{ChannelAbout, ConnectionControl, Traffic};
use crate::broker::message_counts::{MessageCounts, MessageFigures};

/// The parts of a connection that queues and the writer task reach: its outbox and the
/// channels whose deliveries must resume once the outbox drains.
pub struct ConnectionShared {
    pub id: u64,
    pub outbox: Outbox,
    pub frame_max: AtomicU32,
    pub consumer_cancel_notify: std::sync::atomic::AtomicBool,
    pub channels: Mutex<HashMap<u16, Arc<ChannelShared>>>,
    /// Woken when a channel's tx.commit failed in the store (the store's writer thread cannot
    /// close a channel itself; this task does, in `close_channels_with_failed_commits`).
    pub commit_failures: tokio::sync::Notify,
    /// Set (and `forced` woken) when the broker closes this connection: a deleted vhost or user.
    pub(super) forced_reason: Mutex<Option<String>>,
    pub(super) forced: tokio::sync::Notify,
    /// What the reader has read (the management API's `recv_oct`, `recv_cnt`).
    pub(super) received: Arc<ReadCounts>,
    /// The message counts of this connection's closed channels (each open channel counts its
    /// own). Added to under `channels`' lock, as the channel leaves the map, and read under it.
    pub closed_channels: MessageCounts,
    /// Set when a delivery with an acknowledgement deadline goes out, cleared by this
    /// connection's task once none is left; `ack_deadlines` wakes the task to check them every
    /// second. An idle connection runs no such timer (19,000 idle connections would otherwise
    /// wake 19,000 times a second).
    pub(super) ack_deadlines_armed: AtomicBool,
    pub(super) ack_deadlines: tokio::sync::Notify,
}

impl ConnectionShared {
    /// A delivery with an acknowledgement deadline went out (one relaxed load once armed).
    pub fn arm_ack_deadlines(&self) {
        if !self.ack_deadlines_armed.load(Ordering::Relaxed)
            && !self.ack_deadlines_armed.swap(true, Ordering::AcqRel)
        {
            self.ack_deadlines.notify_one();
        }
    }

    /// After the outbox drained: let every channel's consumers take messages again.
    pub(super) fn resume_deliveries(&self) {
        let channels: Vec<Arc<ChannelShared>> = self.channels.lock().values().cloned().collect();
        for channel in channels {
            channel.resume_deliveries();
        }
    }

    /// A channel closed for good (released: it counts nothing more): out of the map, its counts
    /// into the connection's, at once for readers of [`ConnectionControl::message_figures`].
    pub(super) fn forget_channel(&self, id: u16) {
        let mut channels = self.channels.lock();
        if let Some(channel) = channels.remove(&id) {
            self.closed_channels.absorb(&channel.counts.figures());
        }
    }
}

impl ConnectionControl for ConnectionShared {
    fn force_close(&self, text: String) {
        *self.forced_reason.lock() = Some(text);
        self.forced.notify_one();
    }

    fn traffic(&self) -> Traffic {
        let (send_cnt, send_pend) = self.outbox.writes_and_pending();
        Traffic {
            recv_oct: self.received.bytes.load(Ordering::Relaxed),
            recv_cnt: self.received.reads.load(Ordering::Relaxed),
            send_oct: self.outbox.written(),
            send_cnt,
            send_pend,
        }
    }

    fn message_figures(&self) -> MessageFigures {
        let channels = self.channels.lock();
        let mut total = self.closed_channels.figures();
        for channel in channels.values() {
            total.add(&channel.counts.figures());
        }
        total
    }

    fn channel_counts(&self) -> Vec<(u16, Arc<MessageCounts>)> {
        let channels = self.channels.lock();
        channels
            .iter()
            .map(|(id, c)| (*id, c.counts.clone()))
            .collect()
    }

    fn channels(&self) -> Vec<ChannelAbout> {
        let channels: Vec<Arc<ChannelShared>> = self.channels.lock().values().cloned().collect();
        let mut about: Vec<_> = channels.iter().map(|c| c.about()).collect();
        about.sort_by_key(|c| c.number);
        about
    }
}
