//! basic.get: the head message, paging the backlog in (or waiting for the page-in under way)
//! when the ready list has nothing to give, so a queue holding messages never answers
//! get-empty.

use std::sync::Arc;

use super::queue::Queue;
use crate::broker::message::QueuedMessage;
use crate::broker::message_counts::MessageCounts;

impl Queue {
    /// basic.get: the head message and the number left behind it. `no_ack` settles it at once.
    /// With the ready list empty it pages in (or waits for the page-in under way), so a queue
    /// holding messages never answers get-empty.
    pub fn get(self: &Arc<Self>, no_ack: bool) -> Option<(QueuedMessage, u32)> {
        self.touch();
        if let Some(replica) = self.replica.get() {
            return replica.get(no_ack);
        }
        let mut st = self.state.lock();
        let mut paged = false;
        let message = loop {
            if let Some(m) = self.pop_ready(&mut st) {
                break Some(m);
            }
            if st.backlog.is_empty() {
                break None;
            }
            if st.paging_in {
                self.paged_in.wait(&mut st);
            } else {
                paged |= self.page_in(&mut st);
            }
        };
        match &message {
            Some(m) if no_ack => self.forget_stored([m]),
            Some(m) => {
                st.unacked += 1;
                st.unacked_bytes += m.message.body.len() as u64;
            }
            None => {}
        }
        match &message {
            Some(m) => self.counts.bump_delivery(true, no_ack, m.redelivered),
            None => MessageCounts::bump(&self.counts.get_empty, 1),
        }
        if paged {
            // Consumers found nothing while this read went on: the rest is theirs.
            self.dispatch_paging(&mut st);
        }
        let Some(message) = message else {
            self.finish(st);
            return None;
        };
        let remaining = Self::ready_count(&st);
        self.finish(st);
        Some((message, remaining))
    }
}
