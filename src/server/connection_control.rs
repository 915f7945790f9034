//! What the broker asks of a connection through [`ConnectionControl`]: close it (a deleted
//! vhost or user, the management API), and what the management API shows of it (its channels
//! and socket traffic). Reads shared state only; the connection task acts on a close request.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::channel::ChannelShared;
use super::connection::ConnectionShared;
use crate::broker::connections::{ChannelAbout, ConnectionControl, Traffic};

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

    fn channels(&self) -> Vec<ChannelAbout> {
        let channels: Vec<Arc<ChannelShared>> = self.channels.lock().values().cloned().collect();
        let mut about: Vec<_> = channels.iter().map(|c| c.about()).collect();
        about.sort_by_key(|c| c.number);
        about
    }
}
