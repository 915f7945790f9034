//! What applies to one queue or exchange: the policy and the operator policy that match it,
//! merged as RabbitMQ merges them — the union of their keys, and where both set a numeric
//! limit the lower value wins (`rabbit_policies:merge_policy_value`). The merged definition is
//! what the API shows as `effective_policy_definition`; [`QueuePolicyValues`] is the part a
//! classic queue acts on, typed. How it combines with a queue's own `x-*` arguments is the
//! queue's business (queue/settings.rs).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::Policy;

/// The policies applying to one object, and their merged definition.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub policy: Option<Arc<Policy>>,
    pub operator: Option<Arc<Policy>>,
    /// The policy's keys, with the operator policy's merged in.
    pub definition: Map<String, Value>,
}

impl Applied {
    pub fn new(policy: Option<Arc<Policy>>, operator: Option<Arc<Policy>>) -> Applied {
        let mut definition = policy
            .as_ref()
            .map(|p| p.definition.clone())
            .unwrap_or_default();
        if let Some(op) = &operator {
            for (key, value) in &op.definition {
                let merged = match (definition.get(key).and_then(Value::as_u64), value.as_u64()) {
                    (Some(mine), Some(theirs)) => Value::from(mine.min(theirs)),
                    _ => value.clone(),
                };
                definition.insert(key.clone(), merged);
            }
        }
        Applied {
            policy,
            operator,
            definition,
        }
    }

    /// Whether the same policies apply as in `other` (nothing to re-apply).
    pub fn same_as(&self, other: &Applied) -> bool {
        let same = |a: &Option<Arc<Policy>>, b: &Option<Arc<Policy>>| match (a, b) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        same(&self.policy, &other.policy) && same(&self.operator, &other.operator)
    }

    pub fn policy_name(&self) -> Option<&str> {
        self.policy.as_ref().map(|p| p.name.as_str())
    }

    pub fn operator_name(&self) -> Option<&str> {
        self.operator.as_ref().map(|p| p.name.as_str())
    }

    fn text(&self, key: &str) -> Option<String> {
        self.definition
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// The keys a queue acts on.
    pub fn queue_values(&self) -> QueuePolicyValues {
        let number = |key: &str| self.definition.get(key).and_then(Value::as_u64);
        QueuePolicyValues {
            max_length: number("max-length"),
            max_length_bytes: number("max-length-bytes"),
            message_ttl_ms: number("message-ttl"),
            expires_ms: number("expires"),
            delivery_limit: number("delivery-limit"),
            overflow: self.text("overflow"),
            dead_letter_exchange: self.text("dead-letter-exchange"),
            dead_letter_routing_key: self.text("dead-letter-routing-key"),
            queue_mode: self.text("queue-mode"),
            max_age_ms: self
                .text("max-age")
                .and_then(|t| crate::broker::queue::stream::retention::parse_max_age(&t)),
            stream_segment_bytes: number("stream-max-segment-size-bytes"),
            dead_letter_strategy: self.text("dead-letter-strategy"),
            retry_delays: self
                .definition
                .get("retry-delays")
                .and_then(super::validate::retry_delays),
        }
    }

    /// `alternate-exchange`, for an exchange.
    pub fn alternate_exchange(&self) -> Option<Arc<str>> {
        self.text("alternate-exchange").map(Arc::from)
    }
}

/// The policy keys a queue acts on, as values (checked when the policy was set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueuePolicyValues {
    pub max_length: Option<u64>,
    pub max_length_bytes: Option<u64>,
    pub message_ttl_ms: Option<u64>,
    pub expires_ms: Option<u64>,
    pub delivery_limit: Option<u64>,
    pub overflow: Option<String>,
    pub dead_letter_exchange: Option<String>,
    pub dead_letter_routing_key: Option<String>,
    pub queue_mode: Option<String>,
    /// A stream's retention keys.
    pub max_age_ms: Option<u64>,
    pub stream_segment_bytes: Option<u64>,
    /// A quorum queue's `dead-letter-strategy`.
    pub dead_letter_strategy: Option<String>,
    /// warren's `retry-delays` (classic queues).
    pub retry_delays: Option<Vec<u64>>,
}
