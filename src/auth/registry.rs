//! [`Auth`]: the users, their permissions per vhost and their topic permissions, in memory,
//! and the checks RabbitMQ makes with them — logins (PLAIN, AMQPLAIN, EXTERNAL; the
//! `loopback_users` rule), vhost access at connection.open, and resource and topic access on
//! every operation, refused with RabbitMQ's codes and texts.
//!
//! Durability is the broker's job (`broker::tenancy` writes the store, then calls in here);
//! this file touches no store, socket or vhost.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;
use warren_protocol::AmqpError;

use super::mechanisms::parse_response;
use super::permissions::{Access, Permissions, ResourceKind, TopicPermission};
use super::users::User;

/// Why a login was refused; the text goes into connection.close 403 and the log.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthError {
    UnknownMechanism(String),
    Malformed,
    BadCredentials(String),
    LoopbackOnly(String),
}

#[derive(Default)]
struct State {
    users: HashMap<String, Arc<User>>,
    /// (user, vhost) → permissions.
    permissions: HashMap<(String, String), Arc<Permissions>>,
    /// (user, vhost) → topic permissions, one per exchange.
    topic_permissions: HashMap<(String, String), Vec<TopicPermission>>,
}

#[derive(Default)]
pub struct Auth {
    state: RwLock<State>,
    /// Bumped by every change: channels drop their cached permission checks when it moves.
    generation: AtomicU64,
    /// RabbitMQ's `loopback_users`: these may only connect from 127.0.0.0/8 or ::1.
    loopback_users: RwLock<Vec<String>>,
}

impl Auth {
    pub fn new(loopback_users: Vec<String>) -> Auth {
        Auth {
            loopback_users: RwLock::new(loopback_users),
            ..Auth::default()
        }
    }

    /// `user` with full permissions on `vhost`: an in-memory broker's default (tests, fuzzing).
    pub fn with_default_user(name: &str, password: &str, vhost: &str) -> Auth {
        use super::password::{HashingAlgorithm, PasswordHash};
        let auth = Auth::new(vec!["guest".to_string()]);
        let hash = PasswordHash::new(HashingAlgorithm::Sha256, password);
        auth.put_user(User::new(name, Some(hash), &[super::users::ADMINISTRATOR]));
        auth.set_permissions(name, vhost, Permissions::all());
        auth
    }

    /// Changes whenever users or permissions do.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    // ---- users and permissions (in memory; the broker persists first) ----

    pub fn put_user(&self, user: User) {
        self.state
            .write()
            .users
            .insert(user.name.clone(), Arc::new(user));
        self.changed();
    }

    /// Removes the user and every permission it had; false if there was none.
    pub fn delete_user(&self, name: &str) -> bool {
        let mut state = self.state.write();
        let existed = state.users.remove(name).is_some();
        state.permissions.retain(|(user, _), _| user != name);
        state.topic_permissions.retain(|(user, _), _| user != name);
        drop(state);
        self.changed();
        existed
    }

    pub fn user(&self, name: &str) -> Option<Arc<User>> {
        self.state.read().users.get(name).cloned()
    }

    pub fn users(&self) -> Vec<Arc<User>> {
        let mut users: Vec<_> = self.state.read().users.values().cloned().collect();
        users.sort_by(|a, b| a.name.cmp(&b.name));
        users
    }

    pub fn set_permissions(&self, user: &str, vhost: &str, permissions: Permissions) {
        self.state
            .write()
            .permissions
            .insert((user.to_string(), vhost.to_string()), Arc::new(permissions));
        self.changed();
    }

    pub fn clear_permissions(&self, user: &str, vhost: &str) -> bool {
        let key = (user.to_string(), vhost.to_string());
        let existed = self.state.write().permissions.remove(&key).is_some();
        self.changed();
        existed
    }

    /// Every (user, vhost, permissions), sorted.
    pub fn all_permissions(&self) -> Vec<(String, String, Arc<Permissions>)> {
        let mut all: Vec<_> = self
            .state
            .read()
            .permissions
            .iter()
            .map(|((u, v), p)| (u.clone(), v.clone(), p.clone()))
            .collect();
        all.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        all
    }

    /// Sets (replaces) the user's topic permission on `permission.exchange` in `vhost`.
    pub fn set_topic_permission(&self, user: &str, vhost: &str, permission: TopicPermission) {
        let mut state = self.state.write();
        let list = state
            .topic_permissions
            .entry((user.to_string(), vhost.to_string()))
            .or_default();
        list.retain(|p| p.exchange != permission.exchange);
        list.push(permission);
        drop(state);
        self.changed();
    }

    /// Clears the user's topic permissions in `vhost`: on one exchange, or all of them.
    pub fn clear_topic_permissions(&self, user: &str, vhost: &str, exchange: Option<&str>) {
        let mut state = self.state.write();
        let key = (user.to_string(), vhost.to_string());
        match exchange {
            None => {
                state.topic_permissions.remove(&key);
            }
            Some(x) => {
                if let Some(list) = state.topic_permissions.get_mut(&key) {
                    list.retain(|p| p.exchange != x);
                }
            }
        }
        drop(state);
        self.changed();
    }

    /// Every (user, vhost, topic permission), sorted.
    pub fn all_topic_permissions(&self) -> Vec<(String, String, TopicPermission)> {
        let state = self.state.read();
        let mut all: Vec<_> = state
            .topic_permissions
            .iter()
            .flat_map(|((u, v), list)| list.iter().map(|p| (u.clone(), v.clone(), p.clone())))
            .collect();
        all.sort_by(|a, b| (&a.0, &a.1, &a.2.exchange).cmp(&(&b.0, &b.1, &b.2.exchange)));
        all
    }

    /// A vhost is gone: so are all permissions on it.
    pub fn forget_vhost(&self, vhost: &str) {
        let mut state = self.state.write();
        state.permissions.retain(|(_, v), _| v != vhost);
        state.topic_permissions.retain(|(_, v), _| v != vhost);
        drop(state);
        self.changed();
    }

    pub fn set_loopback_users(&self, users: Vec<String>) {
        *self.loopback_users.write() = users;
    }

    // ---- logins ----

    /// Checks a PLAIN or AMQPLAIN start-ok response; returns the user.
    pub fn authenticate(
        &self,
        mechanism: &str,
        response: &[u8],
        peer: IpAddr,
    ) -> Result<Arc<User>, AuthError> {
        let (name, password) = parse_response(mechanism, response)?;
        let user = self
            .user(&name)
            .ok_or_else(|| AuthError::BadCredentials(name.clone()))?;
        let valid = user
            .password
            .as_ref()
            .is_some_and(|hash| hash.verify(&password));
        if !valid {
            return Err(AuthError::BadCredentials(name));
        }
        self.check_loopback(user, peer)
    }

    /// EXTERNAL: the name comes from the client's certificate; the user must exist.
    pub fn authenticate_external(&self, name: &str, peer: IpAddr) -> Result<Arc<User>, AuthError> {
        let user = self
            .user(name)
            .ok_or_else(|| AuthError::BadCredentials(name.to_string()))?;
        self.check_loopback(user, peer)
    }

    fn check_loopback(&self, user: Arc<User>, peer: IpAddr) -> Result<Arc<User>, AuthError> {
        let loopback_only = self.loopback_users.read().iter().any(|u| *u == user.name);
        if loopback_only && !is_loopback(peer) {
            return Err(AuthError::LoopbackOnly(user.name.clone()));
        }
        Ok(user)
    }

    // ---- access checks, with RabbitMQ's texts ----

    pub fn permissions(&self, user: &str, vhost: &str) -> Option<Arc<Permissions>> {
        let state = self.state.read();
        state
            .permissions
            .get(&(user.to_string(), vhost.to_string()))
            .cloned()
    }

    /// connection.open: the user needs some permissions on the vhost (530 otherwise).
    pub fn check_vhost_access(&self, user: &str, vhost: &str) -> Result<(), AmqpError> {
        if self.permissions(user, vhost).is_some() {
            return Ok(());
        }
        Err(AmqpError::not_allowed(format_args!(
            "access to vhost '{vhost}' refused for user '{user}'"
        )))
    }

    /// `access` on the named queue or exchange (the default exchange is `amq.default` here,
    /// as in RabbitMQ's check and text); 403 otherwise.
    pub fn check_resource(
        &self,
        user: &str,
        vhost: &str,
        kind: ResourceKind,
        name: &str,
        access: Access,
    ) -> Result<(), AmqpError> {
        let name = match (kind, name) {
            (ResourceKind::Exchange, "") => "amq.default",
            _ => name,
        };
        let allowed = self
            .permissions(user, vhost)
            .is_some_and(|p| p.allows(access, name));
        if allowed {
            return Ok(());
        }
        Err(AmqpError::access_refused(format_args!(
            "access to {} '{name}' in vhost '{vhost}' refused for user '{user}'",
            kind.as_str()
        )))
    }

    /// True if the user has topic permissions in `vhost` at all (most have none; then no
    /// routing key needs checking).
    pub fn has_topic_permissions(&self, user: &str, vhost: &str) -> bool {
        self.state
            .read()
            .topic_permissions
            .get(&(user.to_string(), vhost.to_string()))
            .is_some_and(|list| !list.is_empty())
    }

    /// `access` (write for publish, read for bind) on `routing_key` of topic exchange
    /// `exchange`; without a topic permission for that exchange, allowed.
    pub fn check_topic(
        &self,
        user: &str,
        vhost: &str,
        exchange: &str,
        routing_key: &str,
        access: Access,
    ) -> Result<(), AmqpError> {
        let state = self.state.read();
        let Some(list) = state
            .topic_permissions
            .get(&(user.to_string(), vhost.to_string()))
        else {
            return Ok(());
        };
        let Some(permission) = list.iter().find(|p| p.exchange == exchange) else {
            return Ok(());
        };
        if permission.allows(access, routing_key, user, vhost) {
            return Ok(());
        }
        Err(AmqpError::access_refused(format_args!(
            "access to topic '{routing_key}' in exchange '{exchange}' in vhost '{vhost}' \
             refused for user '{user}'"
        )))
    }
}

/// 127.0.0.0/8, ::1, and IPv4-mapped loopback (a dual-stack listener's view of 127.0.0.1).
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}
