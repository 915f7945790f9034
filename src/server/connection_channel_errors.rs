//! A connection closing some of its channels on the broker's initiative, outside any frame
//! of theirs: consumer acknowledgement timeouts (406) and failed tx.commits (541).

use warren_protocol::AmqpError;
use warren_protocol::method;

use super::{Connection, channel_context};
use crate::server::channel::ChannelShared;

impl Connection {
    /// Closes (406) every channel whose oldest consumer delivery has waited for its ack longer
    /// than the consumer timeout, in RabbitMQ's words.
    pub(super) fn close_timed_out_channels(&mut self) {
        let now = crate::broker::clock::now_ms();
        let connection = self.shared.id;
        self.close_channels_where(|id, channel| {
            let timeout = channel.ack_timed_out(now)?;
            tracing::warn!(connection, "consumer ack timeout on channel {id}");
            Some(AmqpError::precondition(format_args!(
                "delivery acknowledgement on channel {id} timed out. Timeout value used: {timeout} ms. \
                 This timeout value can be configured, see consumers doc guide to learn more"
            )))
        });
    }

    /// Whether a delivery with an acknowledgement deadline is still out; if not, the next one
    /// re-arms the check (`ConnectionShared::arm_ack_deadlines`). Disarmed before looking,
    /// so that a delivery made meanwhile either is seen here or arms again.
    pub(super) fn awaits_acks_with_deadlines(&self) -> bool {
        let armed = &self.shared.ack_deadlines_armed;
        armed.store(false, std::sync::atomic::Ordering::Release);
        let waiting = self
            .channels
            .values()
            .any(|channel| channel.shared().has_ack_deadlines());
        if waiting {
            armed.store(true, std::sync::atomic::Ordering::Release);
        }
        waiting
    }

    /// Closes (541) every channel whose tx.commit the store failed to commit: the client gets
    /// an error instead of a commit-ok that would lie or one that never comes.
    pub(super) fn close_channels_with_failed_commits(&mut self) {
        let connection = self.shared.id;
        self.close_channels_where(|id, channel| {
            if !channel.take_commit_failure() {
                return None;
            }
            tracing::warn!(connection, "tx.commit failed on channel {id}");
            Some(
                AmqpError::internal(
                    "tx.commit failed: the store could not write the transaction to disk",
                )
                .on_method(method::TX_COMMIT),
            )
        });
    }

    /// Closes every channel for which `error` gives an error, with that error.
    fn close_channels_where(
        &mut self,
        mut error: impl FnMut(u16, &ChannelShared) -> Option<AmqpError>,
    ) {
        let mut ctx = channel_context(
            &self.broker,
            &self.negotiated,
            &self.shared,
            &mut self.exclusive_queues,
        );
        for (id, channel) in self.channels.iter_mut() {
            if let Some(e) = error(*id, channel.shared()) {
                channel.close_with_error(&e, &self.shared, &mut ctx);
            }
        }
    }
}
