//! Messages that come back to a quorum queue, as RabbitMQ 3.10 treats them:
//!
//! - every delivery of a quorum queue's message carries `x-delivery-count` (0 the first time,
//!   then how often it came back; written by delivered_headers.rs);
//! - a message that comes back more often than `x-delivery-limit` (argument or policy) leaves
//!   the queue, dead-lettered with reason `delivery_limit` when the queue has a dead-letter
//!   exchange;
//! - the others go to the back of the queue, in the order they came back (a classic queue puts
//!   them back in their original places), each under a new position whose store index entry
//!   replaces the old one.
//!
//! The count lives with the message's place in the queue (`QueuedMessage::delivery_count`);
//! it starts again at 0 after a restart (RabbitMQ keeps it in its log).

use super::dead_letter::Reason;
use super::queue::{Queue, QueueState};
use crate::broker::message::QueuedMessage;

impl Queue {
    /// Messages coming back to a quorum queue (requeued, or their channel closed): each one's
    /// count goes up, and those past the delivery limit leave the queue. Returns the rest.
    pub(super) fn count_returns(
        &self,
        st: &mut QueueState,
        messages: Vec<QueuedMessage>,
    ) -> Vec<QueuedMessage> {
        if !self.is_quorum() {
            return messages;
        }
        let limit = st.settings.delivery_limit;
        let mut kept = Vec::with_capacity(messages.len());
        for mut m in messages {
            m.delivery_count = m.delivery_count.saturating_add(1);
            if limit.is_some_and(|limit| u64::from(m.delivery_count) > limit) {
                self.drop_message(st, m, Reason::DeliveryLimit);
            } else {
                kept.push(m);
            }
        }
        kept
    }

    /// Puts messages that came back to a quorum queue at its back, in the order they came,
    /// each under a new position. Its store index entry moves with it: the new one is written
    /// before the old one goes, so the stored body is never left without a reference.
    pub(super) fn requeue_at_back(&self, st: &mut QueueState, messages: Vec<QueuedMessage>) {
        for mut m in messages {
            let old_seq = m.seq;
            let seq = st.next_seq;
            st.next_seq += 1;
            m.seq = seq;
            let durable_at = self.stores(&m).map(|(p, id)| {
                let at = p
                    .store
                    .enqueue_meta(p.queue_id, seq, id, self.entry_meta(st, &m));
                p.store.remove(p.queue_id, old_seq, id);
                at
            });
            self.push_ready_or_paged(st, m, durable_at);
        }
    }
}
