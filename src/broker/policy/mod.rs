//! Policies and operator policies, as RabbitMQ 3.10 has them: a named pattern in a vhost that
//! gives matching queues and/or exchanges settings (`max-length`, `message-ttl`,
//! `dead-letter-exchange`, `alternate-exchange` …) without redeclaring them.
//!
//! This module owns the model: a checked [`Policy`] (validate.rs reads one from its JSON, with
//! RabbitMQ's refusals), a vhost's set of them ([`VhostPolicies`]) and which of them applies to
//! a queue or an exchange — the matching one of highest priority of each kind — and how the
//! pair merges (effective.rs). It knows nothing of queues' state or of the store: tenancy/
//! policies.rs stores and applies them, queue/settings.rs turns what applies into a queue's
//! settings.

mod effective;
mod validate;

use std::sync::Arc;

use fancy_regex::Regex;
use serde_json::{Map, Number, Value, json};

pub use effective::{Applied, QueuePolicyValues};

/// User policies (`/api/policies`, set by policymakers) or operator policies
/// (`/api/operator-policies`, administrators only, numeric limits only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    Policy,
    Operator,
}

/// What kind of object a policy applies to (`apply-to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyTo {
    Queues,
    Exchanges,
    All,
}

impl ApplyTo {
    pub fn name(self) -> &'static str {
        match self {
            ApplyTo::Queues => "queues",
            ApplyTo::Exchanges => "exchanges",
            ApplyTo::All => "all",
        }
    }

    fn parse(s: &str) -> Option<ApplyTo> {
        match s {
            "queues" => Some(ApplyTo::Queues),
            "exchanges" => Some(ApplyTo::Exchanges),
            "all" => Some(ApplyTo::All),
            _ => None,
        }
    }
}

/// What a policy is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Queue,
    Exchange,
}

/// One checked policy.
#[derive(Debug)]
pub struct Policy {
    pub vhost: String,
    pub name: String,
    pub kind: PolicyKind,
    /// The pattern as given (what the API shows and the store keeps).
    pub pattern_source: String,
    pattern: Regex,
    pub apply_to: ApplyTo,
    /// As given: RabbitMQ keeps a priority of 1.5 as 1.5.
    pub priority: Number,
    /// The keys and values as given (checked).
    pub definition: Map<String, Value>,
}

impl Policy {
    /// Whether this policy applies to `target` named `name` (the pattern matches anywhere in
    /// the name, as Erlang's `re:run` does; use `^…$` to anchor).
    pub fn applies_to(&self, target: Target, name: &str) -> bool {
        let kind_matches = matches!(
            (self.apply_to, target),
            (ApplyTo::All, _)
                | (ApplyTo::Queues, Target::Queue)
                | (ApplyTo::Exchanges, Target::Exchange)
        );
        kind_matches && self.pattern.is_match(name).unwrap_or(false)
    }

    fn priority(&self) -> f64 {
        self.priority.as_f64().unwrap_or(0.0)
    }

    /// The policy as `/api/policies` lists it and definitions files hold it.
    pub fn to_json(&self) -> Value {
        json!({
            "vhost": self.vhost,
            "name": self.name,
            "pattern": self.pattern_source,
            "apply-to": self.apply_to.name(),
            "definition": self.definition,
            "priority": self.priority,
        })
    }

    /// The body a PUT would carry to create this policy (what the store keeps).
    pub fn body_json(&self) -> Value {
        json!({
            "pattern": self.pattern_source,
            "apply-to": self.apply_to.name(),
            "definition": self.definition,
            "priority": self.priority,
        })
    }
}

/// The policies and operator policies of one vhost. Replaced whole on every change (policies
/// change rarely; readers take an `Arc` and never wait for a writer).
#[derive(Debug, Default, Clone)]
pub struct VhostPolicies {
    policies: Vec<Arc<Policy>>,
    operator: Vec<Arc<Policy>>,
}

impl VhostPolicies {
    fn list(&self, kind: PolicyKind) -> &Vec<Arc<Policy>> {
        match kind {
            PolicyKind::Policy => &self.policies,
            PolicyKind::Operator => &self.operator,
        }
    }

    fn list_mut(&mut self, kind: PolicyKind) -> &mut Vec<Arc<Policy>> {
        match kind {
            PolicyKind::Policy => &mut self.policies,
            PolicyKind::Operator => &mut self.operator,
        }
    }

    /// Whether the vhost has no policies of either kind.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty() && self.operator.is_empty()
    }

    /// The policies of `kind`, by name.
    pub fn all(&self, kind: PolicyKind) -> &[Arc<Policy>] {
        self.list(kind)
    }

    pub fn get(&self, kind: PolicyKind, name: &str) -> Option<&Arc<Policy>> {
        self.list(kind).iter().find(|p| p.name == name)
    }

    /// Adds or replaces (by name) a policy; the list stays sorted by name.
    pub fn put(&mut self, policy: Arc<Policy>) {
        let list = self.list_mut(policy.kind);
        match list.binary_search_by(|p| p.name.as_str().cmp(&policy.name)) {
            Ok(i) => list[i] = policy,
            Err(i) => list.insert(i, policy),
        }
    }

    /// Removes a policy; `None` if there was none by that name.
    pub fn remove(&mut self, kind: PolicyKind, name: &str) -> Option<Arc<Policy>> {
        let list = self.list_mut(kind);
        let i = list.iter().position(|p| p.name == name)?;
        Some(list.remove(i))
    }

    /// The policy of `kind` that applies to an object: of those matching, the one of highest
    /// priority (on a tie, the first by name).
    fn matching(&self, kind: PolicyKind, target: Target, name: &str) -> Option<Arc<Policy>> {
        let mut best: Option<&Arc<Policy>> = None;
        for p in self.list(kind) {
            if p.applies_to(target, name) && best.is_none_or(|b| p.priority() > b.priority()) {
                best = Some(p);
            }
        }
        best.cloned()
    }

    /// What applies to `target` named `name`: the policy and the operator policy, merged.
    pub fn applied(&self, target: Target, name: &str) -> Applied {
        Applied::new(
            self.matching(PolicyKind::Policy, target, name),
            self.matching(PolicyKind::Operator, target, name),
        )
    }
}

pub use validate::parse;

#[cfg(test)]
mod tests;
