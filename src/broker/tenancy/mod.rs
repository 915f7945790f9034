//! Tenancy operations on the broker — vhosts, users, permissions, topic permissions, limits —
//! each written to the store first (one commit) and then applied in memory, so what a client
//! was told exists survives a restart or kill -9. The AMQP handshake only reads the result;
//! the definitions file at boot (and later the management API) call these.
//!
//! Deleting a vhost or a user closes its connections (320 CONNECTION_FORCED, RabbitMQ's texts).

pub mod boot;
pub mod definitions_file;
pub mod export;
pub mod policies;
pub mod records;
mod replicated;

use std::sync::Arc;

use crate::auth::{Permissions, TopicPermission, User};
use crate::broker::Broker;
use crate::broker::vhost::{VHost, VhostSettings};
use records::{
    permission_definition, topic_permission_definition, user_definition, vhost_definition,
};

/// Why a tenancy operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenancyError {
    /// A user or vhost it names does not exist.
    NotFound(String),
    /// A bad name or regular expression.
    Invalid(String),
    /// The store could not commit it: nothing changed.
    Store(String),
}

impl std::fmt::Display for TenancyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TenancyError::NotFound(s) | TenancyError::Invalid(s) | TenancyError::Store(s) => {
                f.write_str(s)
            }
        }
    }
}

impl Broker {
    fn persist(
        &self,
        write: impl FnOnce(&crate::store::Store) -> Result<(), crate::store::StoreError>,
    ) -> Result<(), TenancyError> {
        match self.store() {
            Some(store) => write(store).map_err(|e| TenancyError::Store(e.to_string())),
            None => Ok(()),
        }
    }

    /// Creates a vhost (with its own amq.* exchanges), or updates the settings of one that
    /// exists.
    pub(crate) fn put_vhost_here(
        &self,
        name: &str,
        settings: VhostSettings,
    ) -> Result<Arc<VHost>, TenancyError> {
        if name.is_empty() {
            return Err(TenancyError::Invalid("a vhost needs a name".into()));
        }
        let def = vhost_definition(name, &settings);
        self.persist(|store| store.put_definition(&def))?;
        let vhost = self.vhost(name).unwrap_or_else(|| self.create_vhost(name));
        vhost.set_settings(settings);
        Ok(vhost)
    }

    /// Deletes a vhost: closes its connections (320 "vhost 'v' is deleted"), deletes its
    /// queues with their messages, and its exchanges, bindings and permissions, in memory and
    /// in the store.
    pub(crate) fn delete_vhost_here(&self, name: &str) -> Result<(), TenancyError> {
        let Some(vhost) = self.vhosts.write().remove(name) else {
            return Err(TenancyError::NotFound(format!("vhost '{name}' not found")));
        };
        vhost.mark_deleted();
        let closed = self
            .connections
            .close_where(|c| c.vhost == name, &format!("vhost '{name}' is deleted"));
        vhost.remove_all_queues();
        self.auth.forget_vhost(name);
        if let Some(store) = self.store() {
            // The vhost is gone in memory either way; a failed delete leaves records that the
            // next boot restores (logged, not hidden).
            if let Err(e) = store.delete_vhost_definitions(name) {
                tracing::error!("vhost '{name}' deleted, but its stored definitions remain: {e}");
                return Err(TenancyError::Store(e.to_string()));
            }
        }
        tracing::info!("deleted vhost '{name}' ({closed} connections closed)");
        Ok(())
    }

    /// Creates or replaces a user (password hash, tags, limits).
    pub(crate) fn put_user_here(&self, user: User) -> Result<(), TenancyError> {
        if user.name.is_empty() {
            return Err(TenancyError::Invalid("a user needs a name".into()));
        }
        let def = user_definition(&user);
        self.persist(|store| store.put_definition(&def))?;
        self.auth.put_user(user);
        Ok(())
    }

    /// Deletes a user and its permissions; closes its connections (320 "user 'u' is deleted").
    pub(crate) fn delete_user_here(&self, name: &str) -> Result<(), TenancyError> {
        let Some(user) = self.auth.user(name) else {
            return Err(TenancyError::NotFound(format!("user '{name}' not found")));
        };
        let mut defs = vec![user_definition(&user)];
        defs.extend(
            self.auth
                .all_permissions()
                .iter()
                .filter(|(u, _, _)| u == name)
                .map(|(u, v, p)| permission_definition(u, v, p)),
        );
        defs.extend(
            self.auth
                .all_topic_permissions()
                .iter()
                .filter(|(u, _, _)| u == name)
                .map(|(u, v, p)| topic_permission_definition(u, v, p)),
        );
        self.persist(|store| store.delete_definitions(&defs))?;
        self.auth.delete_user(name);
        self.connections
            .close_where(|c| c.user == name, &format!("user '{name}' is deleted"));
        Ok(())
    }

    fn check_user_and_vhost(&self, user: &str, vhost: &str) -> Result<(), TenancyError> {
        if self.auth.user(user).is_none() {
            return Err(TenancyError::NotFound(format!("user '{user}' not found")));
        }
        if self.vhost(vhost).is_none() {
            return Err(TenancyError::NotFound(format!("vhost '{vhost}' not found")));
        }
        Ok(())
    }

    /// Sets a user's configure/write/read expressions on a vhost.
    pub(crate) fn set_permissions_here(
        &self,
        user: &str,
        vhost: &str,
        configure: &str,
        write: &str,
        read: &str,
    ) -> Result<(), TenancyError> {
        self.check_user_and_vhost(user, vhost)?;
        let permissions =
            Permissions::new(configure, write, read).map_err(TenancyError::Invalid)?;
        let def = permission_definition(user, vhost, &permissions);
        self.persist(|store| store.put_definition(&def))?;
        self.auth.set_permissions(user, vhost, permissions);
        Ok(())
    }

    pub(crate) fn clear_permissions_here(
        &self,
        user: &str,
        vhost: &str,
    ) -> Result<(), TenancyError> {
        let Some(p) = self.auth.permissions(user, vhost) else {
            return Err(TenancyError::NotFound(format!(
                "no permissions for user '{user}' in vhost '{vhost}'"
            )));
        };
        let def = permission_definition(user, vhost, &p);
        self.persist(|store| store.delete_definitions(&[def]))?;
        self.auth.clear_permissions(user, vhost);
        Ok(())
    }

    /// Sets a user's write/read routing-key expressions on one topic exchange of a vhost.
    pub(crate) fn set_topic_permission_here(
        &self,
        user: &str,
        vhost: &str,
        exchange: &str,
        write: &str,
        read: &str,
    ) -> Result<(), TenancyError> {
        self.check_user_and_vhost(user, vhost)?;
        let permission =
            TopicPermission::new(exchange, write, read).map_err(TenancyError::Invalid)?;
        let def = topic_permission_definition(user, vhost, &permission);
        self.persist(|store| store.put_definition(&def))?;
        self.auth.set_topic_permission(user, vhost, permission);
        Ok(())
    }

    /// Clears a user's topic permissions on a vhost: on one exchange, or all.
    pub(crate) fn clear_topic_permissions_here(
        &self,
        user: &str,
        vhost: &str,
        exchange: Option<&str>,
    ) -> Result<(), TenancyError> {
        let defs: Vec<_> = self
            .auth
            .all_topic_permissions()
            .iter()
            .filter(|(u, v, p)| u == user && v == vhost && exchange.is_none_or(|x| p.exchange == x))
            .map(|(u, v, p)| topic_permission_definition(u, v, p))
            .collect();
        self.persist(|store| store.delete_definitions(&defs))?;
        self.auth.clear_topic_permissions(user, vhost, exchange);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
