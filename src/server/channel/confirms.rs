//! Publisher confirms (confirm.select): sequence numbers for published messages and the
//! basic.ack / basic.nack frames that settle them, coalesced with `multiple` once per batch of
//! frames read from the socket.

use amq_protocol::protocol::{AMQPClass, confirm};
use warren_protocol::{AmqpError, encode};

use super::{Channel, ChannelContext};
use crate::server::outbox::Outbox;

#[derive(Default)]
pub struct Confirms {
    /// The sequence number the next published message gets (starts at 1).
    last_seq: u64,
    /// Highest confirmed sequence number not yet sent, and how many confirms that covers.
    ack_upto: u64,
    pending_acks: u32,
}

impl Confirms {
    pub fn next_seq(&mut self) -> u64 {
        self.last_seq += 1;
        self.last_seq
    }

    /// `seq` is settled positively. Confirms are released in sequence order.
    pub fn ack(&mut self, seq: u64) {
        self.ack_upto = seq;
        self.pending_acks += 1;
    }

    /// `seq` could not be taken: flush earlier acks so the order stays, then nack it.
    #[allow(dead_code)] // used once overflow/reject-publish lands (queue extensions issue)
    pub fn nack(&mut self, seq: u64, channel: u16, outbox: &Outbox) {
        self.flush(channel, outbox);
        outbox.push(|out| encode::basic_nack(out, channel, seq, false));
    }

    /// Sends the pending acks as one frame (`multiple` when it covers more than one message).
    pub fn flush(&mut self, channel: u16, outbox: &Outbox) {
        if self.pending_acks == 0 {
            return;
        }
        let (upto, multiple) = (self.ack_upto, self.pending_acks > 1);
        self.pending_acks = 0;
        outbox.push(|out| encode::basic_ack(out, channel, upto, multiple));
    }
}

impl Channel {
    pub(super) fn confirm_select(
        &mut self,
        nowait: bool,
        ctx: &mut ChannelContext,
    ) -> Result<(), AmqpError> {
        if self.tx.is_some() {
            return Err(
                AmqpError::precondition("cannot switch from tx to confirm mode").on(85, 10),
            );
        }
        if self.confirms.is_none() {
            self.confirms = Some(Confirms::default());
        }
        if !nowait {
            self.reply(
                ctx,
                AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(confirm::SelectOk {})),
            );
        }
        Ok(())
    }
}
