//! Tenancy operations (vhosts, users, permissions, topic permissions, policies) as the
//! management API, `warren ctl` and definitions imports call them. On a single node they run
//! here (the `*_here` methods in mod.rs and policies.rs); on a cluster node they go through
//! the cluster's replicator and are applied on every node (`broker::replication::apply`).

use std::sync::Arc;

use serde_json::Value;

use super::TenancyError;
use super::records::{user_definition, vhost_definition};
use crate::auth::User;
use crate::broker::Broker;
use crate::broker::policy::PolicyKind;
use crate::broker::replication::Change;
use crate::broker::vhost::{VHost, VhostSettings};

impl Broker {
    /// `None` on a single node; else the replicated change's result.
    fn replicated(&self, change: impl FnOnce() -> Change) -> Option<Result<bool, TenancyError>> {
        let replicator = self.replicator()?;
        Some(match replicator.replicate(change()) {
            Ok(outcome) => outcome.into_tenancy(),
            Err(e) => Err(e.into_tenancy()),
        })
    }

    /// Creates a vhost (with its own amq.* exchanges), or updates the settings of one that
    /// exists.
    pub fn put_vhost(
        &self,
        name: &str,
        settings: VhostSettings,
    ) -> Result<Arc<VHost>, TenancyError> {
        let record = || Change::PutVhost {
            record: vhost_definition(name, &settings).encode(),
        };
        match self.replicated(record) {
            None => self.put_vhost_here(name, settings),
            Some(result) => {
                result?;
                self.vhost(name)
                    .ok_or_else(|| TenancyError::NotFound(format!("vhost '{name}' not found")))
            }
        }
    }

    /// Deletes a vhost with everything in it, closing its connections.
    pub fn delete_vhost(&self, name: &str) -> Result<(), TenancyError> {
        let change = || Change::DeleteVhost { name: name.into() };
        self.replicated(change)
            .unwrap_or_else(|| self.delete_vhost_here(name).map(|_| false))
            .map(|_| ())
    }

    /// Creates or replaces a user (password hash, tags, limits).
    pub fn put_user(&self, user: User) -> Result<(), TenancyError> {
        let change = || Change::PutUser {
            record: user_definition(&user).encode(),
        };
        match self.replicated(change) {
            None => self.put_user_here(user),
            Some(result) => result.map(|_| ()),
        }
    }

    /// Deletes a user and its permissions, closing its connections.
    pub fn delete_user(&self, name: &str) -> Result<(), TenancyError> {
        let change = || Change::DeleteUser { name: name.into() };
        self.replicated(change)
            .unwrap_or_else(|| self.delete_user_here(name).map(|_| false))
            .map(|_| ())
    }

    /// Sets a user's configure/write/read expressions on a vhost.
    pub fn set_permissions(
        &self,
        user: &str,
        vhost: &str,
        configure: &str,
        write: &str,
        read: &str,
    ) -> Result<(), TenancyError> {
        let change = || Change::SetPermissions {
            user: user.into(),
            vhost: vhost.into(),
            configure: configure.into(),
            write: write.into(),
            read: read.into(),
        };
        self.replicated(change)
            .unwrap_or_else(|| {
                self.set_permissions_here(user, vhost, configure, write, read)
                    .map(|_| false)
            })
            .map(|_| ())
    }

    pub fn clear_permissions(&self, user: &str, vhost: &str) -> Result<(), TenancyError> {
        let change = || Change::ClearPermissions {
            user: user.into(),
            vhost: vhost.into(),
        };
        self.replicated(change)
            .unwrap_or_else(|| self.clear_permissions_here(user, vhost).map(|_| false))
            .map(|_| ())
    }

    /// Sets a user's write/read routing-key expressions on one topic exchange of a vhost.
    pub fn set_topic_permission(
        &self,
        user: &str,
        vhost: &str,
        exchange: &str,
        write: &str,
        read: &str,
    ) -> Result<(), TenancyError> {
        let change = || Change::SetTopicPermission {
            user: user.into(),
            vhost: vhost.into(),
            exchange: exchange.into(),
            write: write.into(),
            read: read.into(),
        };
        self.replicated(change)
            .unwrap_or_else(|| {
                self.set_topic_permission_here(user, vhost, exchange, write, read)
                    .map(|_| false)
            })
            .map(|_| ())
    }

    /// Clears a user's topic permissions on a vhost: on one exchange, or all.
    pub fn clear_topic_permissions(
        &self,
        user: &str,
        vhost: &str,
        exchange: Option<&str>,
    ) -> Result<(), TenancyError> {
        let change = || Change::ClearTopicPermissions {
            user: user.into(),
            vhost: vhost.into(),
            exchange: exchange.map(str::to_string),
        };
        self.replicated(change)
            .unwrap_or_else(|| {
                self.clear_topic_permissions_here(user, vhost, exchange)
                    .map(|_| false)
            })
            .map(|_| ())
    }

    /// Creates or replaces a policy from its JSON body; `Ok(true)` when it is new.
    pub fn put_policy(
        &self,
        vhost: &str,
        name: &str,
        kind: PolicyKind,
        body: &Value,
    ) -> Result<bool, TenancyError> {
        let change = || Change::PutPolicy {
            vhost: vhost.into(),
            name: name.into(),
            operator: kind == PolicyKind::Operator,
            body: body.to_string(),
        };
        self.replicated(change)
            .unwrap_or_else(|| self.put_policy_here(vhost, name, kind, body))
    }

    /// Deletes a policy; `NotFound` if the vhost has none by that name.
    pub fn delete_policy(
        &self,
        vhost: &str,
        name: &str,
        kind: PolicyKind,
    ) -> Result<(), TenancyError> {
        let change = || Change::DeletePolicy {
            vhost: vhost.into(),
            name: name.into(),
            operator: kind == PolicyKind::Operator,
        };
        self.replicated(change)
            .unwrap_or_else(|| self.delete_policy_here(vhost, name, kind).map(|_| false))
            .map(|_| ())
    }
}
