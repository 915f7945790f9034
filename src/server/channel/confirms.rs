//! Publisher confirms (confirm.select): each published message gets a sequence number; it is
//! settled at once when nothing needs storing, or when the store commits the transaction
//! holding it. Settled confirms are reported in sequence order, coalesced into one basic.ack
//! with `multiple` where a run allows, so a client never sees a later message confirmed before
//! an earlier one that is still being written.

use std::collections::VecDeque;

use amq_protocol::protocol::{AMQPClass, confirm};
use bytes::BytesMut;
use warren_protocol::{AmqpError, encode};

use super::{Channel, ChannelContext};
use warren_protocol::method;

/// Where one published message stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ConfirmState {
    /// Waiting for its queues or the store.
    Pending,
    /// To be reported with basic.ack.
    Acked,
    /// To be reported with basic.nack.
    Nacked,
}

/// Confirm state of one channel, shared with the store's commit callbacks.
pub struct ConfirmTracker {
    /// Sequence number of `states[0]`; everything before it has been reported.
    first_seq: u64,
    states: VecDeque<ConfirmState>,
    /// The channel is gone: commits that finish later must not write on its id (a client may
    /// have opened a new channel with it, or already seen close-ok).
    closed: bool,
}

impl Default for ConfirmTracker {
    fn default() -> Self {
        ConfirmTracker {
            first_seq: 1,
            states: VecDeque::new(),
            closed: false,
        }
    }
}

impl ConfirmTracker {
    /// The next published message's sequence number (starting at 1), pending until settled.
    pub fn register(&mut self) -> u64 {
        self.states.push_back(ConfirmState::Pending);
        self.first_seq + self.states.len() as u64 - 1
    }

    pub fn settle(&mut self, seq: u64, ok: bool) {
        if let Some(state) = seq
            .checked_sub(self.first_seq)
            .and_then(|i| self.states.get_mut(i as usize))
        {
            *state = if ok {
                ConfirmState::Acked
            } else {
                ConfirmState::Nacked
            };
        }
    }

    /// Nothing is reported after this (what is still pending is forgotten).
    pub fn close(&mut self) {
        self.closed = true;
        self.states.clear();
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Writes basic.ack / basic.nack for the settled prefix; false when nothing was written.
    pub fn flush(&mut self, channel: u16, out: &mut BytesMut) -> bool {
        if self.closed {
            return false;
        }
        let mut run: Option<(u64, u32)> = None; // (last acked seq, run length)
        let mut wrote = false;
        while let Some(&state) = self.states.front() {
            if state == ConfirmState::Pending {
                break;
            }
            self.states.pop_front();
            let seq = self.first_seq;
            self.first_seq += 1;
            if state == ConfirmState::Acked {
                run = Some((seq, run.map_or(1, |(_, n)| n + 1)));
                continue;
            }
            if let Some((upto, n)) = run.take() {
                encode::basic_ack(out, channel, upto, n > 1);
            }
            encode::basic_nack(out, channel, seq, false);
            wrote = true;
        }
        if let Some((upto, n)) = run {
            encode::basic_ack(out, channel, upto, n > 1);
            wrote = true;
        }
        wrote
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
                AmqpError::precondition("cannot switch from tx to confirm mode")
                    .on_method(method::CONFIRM_SELECT),
            );
        }
        self.confirm_mode = true;
        self.shared.settings.set_confirm();
        if !nowait {
            self.reply(
                ctx,
                AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(confirm::SelectOk {})),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::protocol::basic;
    use warren_protocol::Frame;
    use warren_protocol::codec::decode_frame;

    fn frames(out: &mut BytesMut) -> Vec<basic::AMQPMethod> {
        let mut v = vec![];
        while let Some(Frame::Method {
            method: AMQPClass::Basic(m),
            ..
        }) = decode_frame(out, 0).unwrap()
        {
            v.push(m);
        }
        v
    }

    #[test]
    fn confirms_are_reported_in_order_and_coalesced() {
        let mut t = ConfirmTracker::default();
        let (a, b, c, d) = (t.register(), t.register(), t.register(), t.register());
        assert_eq!((a, b, c, d), (1, 2, 3, 4));
        let mut out = BytesMut::new();
        t.settle(b, true);
        t.settle(c, true);
        assert!(!t.flush(1, &mut out), "2 and 3 wait for 1");
        t.settle(a, true);
        t.settle(d, false);
        assert!(t.flush(1, &mut out));
        assert_eq!(
            frames(&mut out),
            vec![
                basic::AMQPMethod::Ack(basic::Ack {
                    delivery_tag: 3,
                    multiple: true
                }),
                basic::AMQPMethod::Nack(basic::Nack {
                    delivery_tag: 4,
                    multiple: false,
                    requeue: false
                }),
            ]
        );
    }
}
