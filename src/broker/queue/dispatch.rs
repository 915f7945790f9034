//! A queue's side of its consumers: adding and removing them, and handing ready messages to
//! the ones with credit (consumers.rs picks which; the consumer's channel writes the frames).
//! Settling what they were given stays in queue.rs.

use std::sync::Arc;

use parking_lot::MutexGuard;
use warren_protocol::AmqpError;

use super::paging::Head;
use super::queue::{ConsumerRemoved, Queue, QueueState};
use super::stream::StreamStart;
use crate::broker::consumer::Consumer;
use crate::broker::message::QueuedMessage;
use crate::broker::names;

impl Queue {
    /// Delivers ready messages to consumers with credit, round-robin, offering every consumer
    /// again (for callers that cannot say which consumer may take more now).
    pub fn dispatch(self: &Arc<Self>) {
        if let Some(replica) = self.replica.get() {
            let consumers: Vec<_> = self.state.lock().consumers.iter().cloned().collect();
            return replica.resume(&consumers);
        }
        let mut st = self.state.lock();
        st.consumers.unpark_all();
        self.dispatch_paging(&mut st);
        self.finish(st);
    }

    /// These consumers of this queue may take messages again (announced, or their channel
    /// unblocked): back into the rotation, then deliver what can go.
    pub fn resume(self: &Arc<Self>, consumers: &[Arc<Consumer>]) {
        if let Some(replica) = self.replica.get() {
            return replica.resume(consumers);
        }
        let mut st = self.state.lock();
        st.consumers.unpark_each(consumers);
        self.dispatch_paging(&mut st);
        self.finish(st);
    }

    /// Delivers what consumers can take, paging the backlog in whenever the in-memory ready
    /// list runs dry. The lock is released during each store read.
    pub(super) fn dispatch_paging(self: &Arc<Self>, st: &mut MutexGuard<'_, QueueState>) {
        if st.stream.is_some() {
            return self.stream_dispatch(st);
        }
        loop {
            self.dispatch_locked(st);
            let paged_first = match Self::head(st) {
                Head::Backlog(_) => true,
                Head::Ready | Head::Empty => false,
            };
            if !paged_first || st.consumers.is_empty() || !self.page_in(st) {
                return;
            }
        }
    }

    /// Delivers from the in-memory ready list only (the lock stays held).
    pub(super) fn dispatch_locked(self: &Arc<Self>, st: &mut QueueState) {
        if st.consumers.is_empty() {
            return;
        }
        while let Some(message) = self.pop_ready(st) {
            if let Err(message) = self.deliver_one(st, message) {
                // No consumer can take more right now.
                st.ready.push_front(message);
                break;
            }
        }
    }

    /// Hands `message` to the next consumer that can take it, or back if none can.
    pub(super) fn deliver_one(
        self: &Arc<Self>,
        st: &mut QueueState,
        message: QueuedMessage,
    ) -> Result<(), QueuedMessage> {
        // A no-ack delivery is final: the queue forgets the message as it goes out.
        let stored = self.stores(&message).map(|(p, id)| (p, message.seq, id));
        let redelivered = message.redelivered;
        let size = message.message.body.len() as u64;
        let no_ack = st.consumers.deliver(self, message)?;
        if no_ack {
            if let Some((p, seq, id)) = stored {
                self.remove_entry(&p.store, p.queue_id, seq, id);
            }
        } else {
            st.unacked += 1;
            st.unacked_bytes += size;
        }
        self.counts.bump_delivery(false, no_ack, redelivered);
        Ok(())
    }

    /// Adds a consumer, enforcing exclusive consumption (403 as RabbitMQ words it). Delivers
    /// nothing yet: the caller replies consume-ok first, then calls [`Queue::dispatch`].
    pub fn add_consumer(self: &Arc<Self>, consumer: Arc<Consumer>) -> Result<(), AmqpError> {
        self.add_consumer_from(consumer, None)
    }

    /// [`Queue::add_consumer`], for a stream's consumer from where `start` says (`None`:
    /// `next`); other queues ignore it.
    pub fn add_consumer_from(
        self: &Arc<Self>,
        consumer: Arc<Consumer>,
        start: Option<StreamStart>,
    ) -> Result<(), AmqpError> {
        let mut st = self.state.lock();
        if st.consumers.iter().any(|c| c.exclusive)
            || (consumer.exclusive && !st.consumers.is_empty())
        {
            return Err(AmqpError::access_refused(format_args!(
                "{} in exclusive use",
                names::queue(&self.name, &self.vhost)
            )));
        }
        if let Some(log) = st.stream.as_deref_mut() {
            log.add_cursor(consumer.clone(), start.unwrap_or(StreamStart::Next));
        }
        if let Some(replica) = self.replica.get() {
            replica.consume(self, &consumer);
        }
        st.consumers.add(consumer);
        st.had_consumer = true;
        self.touch();
        Ok(())
    }

    pub fn remove_consumer(self: &Arc<Self>, tag: &str, connection_id: u64) -> ConsumerRemoved {
        let mut st = self.state.lock();
        let leaving = self.replica.get().and_then(|_| {
            st.consumers
                .iter()
                .find(|c| c.tag == tag && c.connection_id == connection_id)
                .cloned()
        });
        if !st.consumers.remove(tag, connection_id) {
            return ConsumerRemoved::NotFound;
        }
        if let (Some(replica), Some(consumer)) = (self.replica.get(), leaving) {
            replica.cancel(&consumer);
        }
        if let Some(log) = st.stream.as_deref_mut() {
            log.remove_cursor(tag, connection_id);
        }
        self.touch();
        // Unused from now on: x-expires starts counting.
        self.schedule_locked(&st);
        if st.consumers.is_empty() && self.options.auto_delete && st.had_consumer && !st.deleted {
            ConsumerRemoved::RemovedLastOfAutoDelete
        } else {
            ConsumerRemoved::Removed
        }
    }
}
