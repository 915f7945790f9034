//! The policies of one vhost in memory: which apply to each queue and exchange, kept current
//! when a policy changes ([`VHost::set_policies`]) and when a queue or exchange is added
//! ([`VHost::apply_current_policies`], called by the insert functions in mod.rs).
//!
//! Storing a policy and checking it is the broker's tenancy operation (tenancy/policies.rs);
//! what a queue does with what applies is the queue's (queue/settings.rs).

use std::sync::Arc;

use super::VHost;
use crate::broker::exchange::Exchange;
use crate::broker::policy::{Target, VhostPolicies};
use crate::broker::queue::Queue;

impl VHost {
    /// The vhost's policies and operator policies.
    pub fn policies(&self) -> Arc<VhostPolicies> {
        self.policies.read().clone()
    }

    /// Replaces the vhost's policies and re-applies them to every queue and exchange whose
    /// matching policies changed. Holds the topology lock, so no queue or exchange is added
    /// meanwhile with the old set.
    pub fn set_policies(&self, policies: VhostPolicies) {
        let _topology = self.topology.lock();
        let policies = Arc::new(policies);
        *self.policies.write() = policies.clone();
        for queue in self.queues() {
            let applied = policies.applied(Target::Queue, &queue.name);
            if !applied.same_as(&queue.applied_policies()) {
                queue.apply_policies(applied);
            }
        }
        let exchanges: Vec<Arc<Exchange>> = self.exchanges.read().values().cloned().collect();
        for exchange in exchanges {
            let applied = policies.applied(Target::Exchange, &exchange.name);
            if !applied.same_as(&exchange.applied_policies()) {
                exchange.apply_policies(applied);
            }
        }
    }

    /// Applies the current policies to a queue about to be added (nothing to do while the
    /// vhost has none).
    pub(super) fn apply_current_policies_to_queue(&self, queue: &Arc<Queue>) {
        let policies = self.policies();
        if !policies.is_empty() {
            queue.apply_policies(policies.applied(Target::Queue, &queue.name));
        }
    }

    /// As [`Self::apply_current_policies_to_queue`], for an exchange.
    pub(super) fn apply_current_policies_to_exchange(&self, exchange: &Exchange) {
        let policies = self.policies();
        if !policies.is_empty() {
            exchange.apply_policies(policies.applied(Target::Exchange, &exchange.name));
        }
    }
}
