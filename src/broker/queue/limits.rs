//! Length limits: `x-max-length` and `x-max-length-bytes`, with `x-overflow` drop-head (the
//! oldest ready messages go, dead-lettered as maxlen) or reject-publish(-dlx) (the new message is
//! refused; see `Queue::publish`).

use super::args::Overflow;
use super::dead_letter::Reason;
use super::queue::{Queue, QueueState};
use crate::broker::message::Message;

impl Queue {
    /// Whether one more message would exceed `x-max-length` or `x-max-length-bytes`.
    pub(super) fn would_overflow(&self, st: &QueueState, message: &Message) -> bool {
        let args = &st.settings;
        if self.is_quorum() {
            // rabbit_fifo:is_over_limit: a quorum queue refuses once it is already over its
            // limit, counting the dead letters it holds (dead_letter/at_least_once.rs) with the
            // ready messages: a queue limited to 2 takes a third message and refuses the fourth.
            let (held, held_bytes) = st.dead_letters.len_and_bytes();
            return args
                .max_length
                .is_some_and(|max| Self::ready_count(st) as u64 + held > max)
                || args
                    .max_length_bytes
                    .is_some_and(|max| Self::ready_bytes(st) + held_bytes > max);
        }
        args.max_length
            .is_some_and(|max| Self::ready_count(st) as u64 >= max)
            || args
                .max_length_bytes
                .is_some_and(|max| Self::ready_bytes(st) + message.body.len() as u64 > max)
    }

    /// `x-max-length` / `x-max-length-bytes` with overflow drop-head: the oldest messages go
    /// (dead-lettered with reason `maxlen` when the queue has a dead-letter exchange) until the
    /// queue is within its limits. The reject-publish modes refuse before enqueueing instead
    /// (see `Queue::publish`).
    pub(super) fn enforce_max_length(&self, st: &mut QueueState) {
        if st.settings.overflow != Overflow::DropHead {
            // Refused before the enqueue instead; a quorum queue may end one over its limit.
            return;
        }
        let (max_length, max_length_bytes) = (st.settings.max_length, st.settings.max_length_bytes);
        let over = |st: &QueueState| {
            max_length.is_some_and(|max| Self::ready_count(st) as u64 > max)
                || max_length_bytes.is_some_and(|max| Self::ready_bytes(st) > max)
        };
        // The head goes, wherever it is; a paged one without its body being read (unless it is
        // dead-lettered: then once, after the lock is released).
        while over(st) && self.drop_head(st, Reason::Maxlen) {}
    }
}
