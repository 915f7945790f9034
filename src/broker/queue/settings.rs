//! What a queue does, from its `x-*` arguments and the policies that apply to it, by
//! RabbitMQ's rules for classic queues (`rabbit_amqqueue_process:process_args_policy`): for
//! `max-length`, `max-length-bytes`, `message-ttl`, `expires` (and a quorum queue's
//! `delivery-limit`) the lower of argument and
//! policy wins; for `overflow`, `dead-letter-exchange`, `dead-letter-routing-key` and
//! `queue-mode` the argument wins over the policy. A quorum queue follows
//! `rabbit_quorum_queue` instead for `overflow`: the policy wins, and `reject-publish-dlx` is
//! not one of its strategies (RabbitMQ logs a warning and uses `drop-head`); its
//! `dead-letter-strategy` is the argument's, else the policy's.
//!
//! [`QueueSettings`] lives in the queue's state, under its lock, so [`Queue::apply_policies`]
//! changes it between two operations: a lower length limit drops (or dead-letters) the excess
//! at once, a new TTL applies to messages published from then on, a new expiry counts from
//! the last use. The arguments themselves ([`QueueArguments`]) never change: redeclare
//! equivalence and the stored definition use the declaration alone.

use std::sync::Arc;

use super::args::{DeadLetterStrategy, Overflow, QueueArguments, QueueMode, QueueType};
use super::dead_letter::DeadLetterTarget;
use super::queue::Queue;
use super::stream::Retention;
use crate::broker::policy::{Applied, QueuePolicyValues};

/// The settings a queue acts on.
#[derive(Debug, Clone, Default)]
pub struct QueueSettings {
    pub max_length: Option<u64>,
    pub max_length_bytes: Option<u64>,
    pub overflow: Overflow,
    pub message_ttl_ms: Option<u64>,
    pub expires_ms: Option<u64>,
    /// A quorum queue's `x-delivery-limit` (quorum_returns.rs).
    pub delivery_limit: Option<u64>,
    pub dead_letter: Option<Arc<DeadLetterTarget>>,
    /// A quorum queue's `x-dead-letter-strategy` as declared or set by policy.
    pub dead_letter_strategy: DeadLetterStrategy,
    /// Dead letters stay in the queue until their targets accept them: a quorum queue with
    /// `at-least-once`, overflow `reject-publish` and a dead-letter exchange (RabbitMQ falls
    /// back to at-most-once otherwise). See dead_letter/at_least_once.rs.
    pub at_least_once: bool,
    pub mode: QueueMode,
    /// Whether messages beyond the paging threshold may be paged out to the store (see
    /// paging.rs): not for streams (their log is their own) nor while at-least-once
    /// dead-lettering holds dropped messages in the queue (it needs them at hand).
    pub pages: bool,
    /// A classic queue's retry delays (retry.rs): the `x-retry-delays` argument, else the
    /// `retry-delays` policy key.
    pub retry_delays: Option<Arc<[u64]>>,
}

/// The lower of two optional limits.
fn lower(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl QueueSettings {
    pub fn new(args: &QueueArguments, policy: &QueuePolicyValues) -> QueueSettings {
        let declared = |key: &str| args.declared().inner().contains_key(key);
        let quorum = args.queue_type == QueueType::Quorum;
        let by_policy = match policy.overflow.as_deref() {
            Some("reject-publish") => Some(Overflow::RejectPublish),
            Some("reject-publish-dlx") => Some(Overflow::RejectPublishDlx),
            Some("drop-head") => Some(Overflow::DropHead),
            _ => None,
        };
        let overflow = match (quorum, by_policy) {
            (true, Some(by_policy)) => by_policy,
            _ if declared("x-overflow") => args.overflow,
            (_, by_policy) => by_policy.unwrap_or_default(),
        };
        let overflow = match overflow {
            Overflow::RejectPublishDlx if quorum => Overflow::DropHead,
            other => other,
        };
        let dead_letter_strategy = args
            .dead_letter_strategy
            .or_else(|| {
                policy
                    .dead_letter_strategy
                    .as_deref()
                    .and_then(DeadLetterStrategy::parse)
            })
            .unwrap_or_default();
        let mode = if declared("x-queue-mode") {
            args.mode
        } else if policy.queue_mode.as_deref() == Some("lazy") {
            QueueMode::Lazy
        } else {
            QueueMode::Default
        };
        let own = args.dead_letter.as_ref();
        let exchange = own
            .map(|d| d.exchange.clone())
            .or_else(|| policy.dead_letter_exchange.clone());
        let dead_letter = exchange.map(|exchange| {
            Arc::new(DeadLetterTarget {
                exchange,
                routing_key: own
                    .and_then(|d| d.routing_key.clone())
                    .or_else(|| policy.dead_letter_routing_key.clone()),
            })
        });
        let max_length_bytes = lower(args.max_length_bytes, policy.max_length_bytes);
        let at_least_once = quorum
            && dead_letter_strategy == DeadLetterStrategy::AtLeastOnce
            && overflow == Overflow::RejectPublish
            && dead_letter.is_some();
        QueueSettings {
            max_length: lower(args.max_length, policy.max_length),
            max_length_bytes,
            overflow,
            message_ttl_ms: lower(args.message_ttl_ms, policy.message_ttl_ms),
            expires_ms: lower(args.expires_ms, policy.expires_ms),
            delivery_limit: lower(args.delivery_limit, policy.delivery_limit),
            pages: args.queue_type != QueueType::Stream && !at_least_once,
            dead_letter,
            dead_letter_strategy,
            at_least_once,
            mode,
            retry_delays: match args.queue_type {
                QueueType::Classic => args
                    .retry_delays
                    .clone()
                    .or_else(|| policy.retry_delays.clone())
                    .map(Arc::from),
                _ => None,
            },
        }
    }
}

impl Queue {
    /// Applies `applied` (the policies that now match this queue): its settings change under
    /// the lock, a lower length limit takes effect at once, and the next deadline (expiry) is
    /// registered. Messages already paged out stay paged (they leave by being delivered, or
    /// without dead-lettering when a new limit drops them).
    pub fn apply_policies(self: &Arc<Self>, applied: Applied) {
        let settings = QueueSettings::new(&self.options.arguments, &applied.queue_values());
        let mut st = self.state.lock();
        if st.deleted {
            return;
        }
        st.settings = settings;
        if let Some(log) = st.stream.as_deref_mut() {
            // Applies from the next segment close or age deadline on, as RabbitMQ's does.
            log.retention = Retention::of(&self.options.arguments, &applied.queue_values());
        }
        st.applied = applied;
        // At-least-once dead letters are dropped, or retried now (dead_letter/at_least_once.rs).
        self.dead_letter_settings_changed(&mut st);
        if st.settings.overflow == Overflow::DropHead {
            // As RabbitMQ (maybe_drop_head): only drop-head queues shed the excess now.
            self.enforce_max_length(&mut st);
        }
        self.finish(st);
    }

    /// The policies applying to this queue.
    pub fn applied_policies(&self) -> Applied {
        self.state.lock().applied.clone()
    }

    /// The settings the queue acts on now (arguments and policies merged).
    pub fn settings(&self) -> QueueSettings {
        self.state.lock().settings.clone()
    }
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
