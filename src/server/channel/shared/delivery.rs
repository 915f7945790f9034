//! How a queue hands this channel a delivery (the [`DeliveryTarget`] side of
//! [`ChannelShared`]): the channel's window and flow decide, the frames go into the
//! connection's outbox under the channel's lock (so delivery tags reach the wire in order), and
//! broker-initiated basic.cancel frames wait while the channel owes its client a delete-ok.
//! The lock order of shared.rs applies.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use amq_protocol::protocol::{AMQPClass, basic};
use warren_protocol::encode;

use super::super::content;
use super::{ChannelShared, Unacked};
use crate::broker::clock;
use crate::broker::consumer::{Consumer, DeliveryTarget};
use crate::broker::message::QueuedMessage;
use crate::broker::queue::Queue;

impl DeliveryTarget for ChannelShared {
    fn try_deliver(
        &self,
        consumer: &Arc<Consumer>,
        queue: &Arc<Queue>,
        message: QueuedMessage,
    ) -> Result<(), QueuedMessage> {
        let mut st = self.state.lock();
        if st.closed || !st.flow_active {
            return Err(message);
        }
        if !consumer.no_ack && st.global_prefetch > 0 && st.global_unacked >= st.global_prefetch {
            return Err(message);
        }
        let tag = st.next_tag;
        let frame_max = self.frame_max();
        let m = &message.message;
        let written = self.connection.outbox.try_push(|out| {
            encode::deliver(
                out,
                self.id,
                &consumer.tag,
                tag,
                message.redelivered,
                &m.exchange,
                &m.routing_key,
            );
            content::write(out, self.id, queue, &message, frame_max);
        });
        if !written {
            return Err(message);
        }
        st.next_tag += 1;
        self.counts
            .bump_delivery(false, consumer.no_ack, message.redelivered);
        if !consumer.no_ack {
            st.global_unacked += 1;
            let ack_deadline = queue.consumer_timeout().map_or(0, |t| clock::now_ms() + t);
            st.unacked.push_back(Unacked {
                tag,
                queue: queue.clone(),
                message,
                consumer: Some(consumer.clone()),
                ack_deadline,
            });
            if ack_deadline != 0 {
                self.connection.arm_ack_deadlines();
            }
        }
        Ok(())
    }

    fn cancelled_by_broker(&self, consumer_tag: &str) {
        if self.remove_consumer(consumer_tag).is_none() {
            return;
        }
        if !self
            .connection
            .consumer_cancel_notify
            .load(Ordering::Relaxed)
        {
            return;
        }
        if let Some(deferred) = &mut self.state.lock().deferred_cancels {
            deferred.push(consumer_tag.to_owned());
            return;
        }
        self.write_cancel(consumer_tag);
    }
}

impl ChannelShared {
    /// From now until [`Self::send_deferred_cancels`], broker-initiated basic.cancel frames
    /// wait (this channel is deleting a queue and owes its client the delete-ok first).
    pub fn defer_cancels(&self) {
        self.state.lock().deferred_cancels = Some(Vec::new());
    }

    pub fn send_deferred_cancels(&self) {
        let tags = self.state.lock().deferred_cancels.take();
        for tag in tags.into_iter().flatten() {
            self.write_cancel(&tag);
        }
    }

    fn write_cancel(&self, consumer_tag: &str) {
        self.write(AMQPClass::Basic(basic::AMQPMethod::Cancel(basic::Cancel {
            consumer_tag: consumer_tag.into(),
            nowait: true,
        })));
    }
}
