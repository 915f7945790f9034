//! Tenancy objects in their store form: users, vhost settings, permissions and topic
//! permissions to and from `store::Definition`. The only place that maps between the two.

use crate::auth::{HashingAlgorithm, PasswordHash, Permissions, TopicPermission, User, UserLimits};
use crate::broker::vhost::{VhostLimits, VhostSettings};
use crate::store::Definition;

pub fn user_definition(user: &User) -> Definition {
    let (password_hash, algorithm) = match &user.password {
        Some(hash) => (hash.as_bytes().to_vec(), hash.algorithm()),
        None => (Vec::new(), HashingAlgorithm::Sha256),
    };
    Definition::User {
        name: user.name.clone(),
        password_hash,
        hashing_algorithm: algorithm.rabbit_name().to_string(),
        tags: user.tags.clone(),
        max_connections: user.limits.max_connections,
        max_channels: user.limits.max_channels,
    }
}

/// A stored user; `Err` (with the reason) if its hash cannot be used.
pub fn user_from(def: &Definition) -> Option<Result<User, String>> {
    let Definition::User {
        name,
        password_hash,
        hashing_algorithm,
        tags,
        max_connections,
        max_channels,
    } = def
    else {
        return None;
    };
    let password = if password_hash.is_empty() {
        None
    } else {
        let Some(algorithm) = HashingAlgorithm::from_rabbit_name(hashing_algorithm) else {
            return Some(Err(format!(
                "user '{name}': unknown hashing algorithm {hashing_algorithm}"
            )));
        };
        match PasswordHash::from_bytes(algorithm, password_hash.clone()) {
            Ok(hash) => Some(hash),
            Err(e) => return Some(Err(format!("user '{name}': {e}"))),
        }
    };
    Some(Ok(User {
        name: name.clone(),
        password,
        tags: tags.clone(),
        limits: UserLimits {
            max_connections: *max_connections,
            max_channels: *max_channels,
        },
    }))
}

pub fn vhost_definition(name: &str, settings: &VhostSettings) -> Definition {
    Definition::VHost {
        name: name.to_string(),
        description: settings.description.clone(),
        tags: settings.tags.clone(),
        max_connections: settings.limits.max_connections,
        max_queues: settings.limits.max_queues,
    }
}

pub fn vhost_from(def: &Definition) -> Option<(String, VhostSettings)> {
    let Definition::VHost {
        name,
        description,
        tags,
        max_connections,
        max_queues,
    } = def
    else {
        return None;
    };
    let settings = VhostSettings {
        description: description.clone(),
        tags: tags.clone(),
        limits: VhostLimits {
            max_connections: *max_connections,
            max_queues: *max_queues,
        },
    };
    Some((name.clone(), settings))
}

pub fn permission_definition(user: &str, vhost: &str, p: &Permissions) -> Definition {
    Definition::Permission {
        user: user.to_string(),
        vhost: vhost.to_string(),
        configure: p.configure.source().to_string(),
        write: p.write.source().to_string(),
        read: p.read.source().to_string(),
    }
}

pub fn topic_permission_definition(user: &str, vhost: &str, p: &TopicPermission) -> Definition {
    Definition::TopicPermission {
        user: user.to_string(),
        vhost: vhost.to_string(),
        exchange: p.exchange.clone(),
        write: p.write.clone(),
        read: p.read.clone(),
    }
}
