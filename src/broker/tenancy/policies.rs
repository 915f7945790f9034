//! Policies and operator policies as broker operations: checked (policy/validate.rs), written
//! to the store (one commit) and then applied to the vhost's queues and exchanges, so a policy
//! an operator was told exists survives a restart. Loading them back at boot is here too, and
//! happens before queues are restored, so every queue starts with what applies to it.

use std::sync::Arc;

use serde_json::Value;

use super::TenancyError;
use crate::broker::Broker;
use crate::broker::policy::{self, Policy, PolicyKind};
use crate::store::Definition;

impl Broker {
    /// Creates or replaces a policy from its JSON body (`pattern`, `definition`, `apply-to`,
    /// `priority`); `Ok(true)` when it is new. A refused body is `Invalid` with RabbitMQ's
    /// reason, a missing vhost `NotFound`.
    pub(crate) fn put_policy_here(
        &self,
        vhost: &str,
        name: &str,
        kind: PolicyKind,
        body: &Value,
    ) -> Result<bool, TenancyError> {
        let Some(host) = self.vhost(vhost) else {
            return Err(TenancyError::NotFound(format!("vhost '{vhost}' not found")));
        };
        let policy =
            Arc::new(policy::parse(vhost, name, kind, body).map_err(TenancyError::Invalid)?);
        let def = policy_definition(&policy);
        self.persist(|store| store.put_definition(&def))?;
        let mut policies = (*host.policies()).clone();
        let created = policies.get(kind, name).is_none();
        policies.put(policy);
        host.set_policies(policies);
        Ok(created)
    }

    /// Deletes a policy; `NotFound` if the vhost has none by that name.
    pub(crate) fn delete_policy_here(
        &self,
        vhost: &str,
        name: &str,
        kind: PolicyKind,
    ) -> Result<(), TenancyError> {
        let missing = || TenancyError::NotFound(format!("policy '{name}' not found"));
        let host = self.vhost(vhost).ok_or_else(missing)?;
        let mut policies = (*host.policies()).clone();
        let policy = policies.remove(kind, name).ok_or_else(missing)?;
        self.persist(|store| store.delete_definitions(&[policy_definition(&policy)]))?;
        host.set_policies(policies);
        Ok(())
    }

    /// The policies of `kind` in every vhost, by vhost and name.
    pub fn all_policies(&self, kind: PolicyKind) -> Vec<Arc<Policy>> {
        let mut vhosts = self.vhosts();
        vhosts.sort_by(|a, b| a.name.cmp(&b.name));
        vhosts
            .iter()
            .flat_map(|v| v.policies().all(kind).to_vec())
            .collect()
    }
}

/// A policy in its store form.
fn policy_definition(policy: &Policy) -> Definition {
    Definition::Policy {
        vhost: policy.vhost.clone(),
        name: policy.name.clone(),
        operator: policy.kind == PolicyKind::Operator,
        body: policy.body_json().to_string(),
    }
}

/// Loads the stored policies into their vhosts (at boot, before queues are restored). One
/// that no longer passes the checks is logged and left out.
pub fn restore(broker: &Broker, definitions: &[Definition]) {
    for def in definitions {
        let Definition::Policy {
            vhost,
            name,
            operator,
            body,
        } = def
        else {
            continue;
        };
        let kind = if *operator {
            PolicyKind::Operator
        } else {
            PolicyKind::Policy
        };
        let parsed = serde_json::from_str::<Value>(body)
            .map_err(|e| e.to_string())
            .and_then(|body| policy::parse(vhost, name, kind, &body));
        match (broker.vhost(vhost), parsed) {
            (Some(host), Ok(policy)) => {
                let mut policies = (*host.policies()).clone();
                policies.put(Arc::new(policy));
                host.set_policies(policies);
            }
            (None, _) => tracing::error!(
                "stored policy '{name}' not loaded: its vhost '{vhost}' does not exist"
            ),
            (_, Err(e)) => {
                tracing::error!("stored policy '{name}' of vhost '{vhost}' not loaded: {e}")
            }
        }
    }
}
