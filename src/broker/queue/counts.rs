//! What a queue reports about itself: ready messages (in memory and paged, or a stream's
//! entries), messages delivered but not acknowledged, and consumers. Read by queue.declare-ok,
//! the management API and the length limits; nothing here changes the queue.

use super::queue::{Queue, QueueState};

impl Queue {
    /// Ready messages, in memory and paged.
    pub(super) fn ready_count(st: &QueueState) -> u32 {
        match &st.stream {
            Some(log) => log.len().min(u64::from(u32::MAX)) as u32,
            None => (st.ready.len() as u64 + st.backlog.len()) as u32,
        }
    }

    /// Body bytes of the ready messages, in memory and paged.
    pub(super) fn ready_bytes(st: &QueueState) -> u64 {
        st.ready.bytes() + st.backlog.bytes()
    }

    pub fn message_count(&self) -> u32 {
        if let Some(replica) = self.replica.get() {
            return replica.counts().ready;
        }
        Self::ready_count(&self.state.lock())
    }

    pub fn consumer_count(&self) -> u32 {
        if let Some(replica) = self.replica.get() {
            return replica.counts().consumers;
        }
        self.state.lock().consumers.len() as u32
    }

    /// Ready messages and messages delivered but not yet acknowledged.
    pub fn ready_and_unacked(&self) -> (u32, u32) {
        if let Some(replica) = self.replica.get() {
            let counts = replica.counts();
            return (counts.ready, counts.unacked);
        }
        let st = self.state.lock();
        (Self::ready_count(&st), st.unacked as u32)
    }

    pub fn counts(&self) -> (u32, u32) {
        if let Some(replica) = self.replica.get() {
            let counts = replica.counts();
            return (counts.ready, counts.consumers);
        }
        let st = self.state.lock();
        (Self::ready_count(&st), st.consumers.len() as u32)
    }
}
