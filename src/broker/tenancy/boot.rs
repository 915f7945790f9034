//! Tenancy at boot: rebuilding vhosts, users and permissions from what the store recovered,
//! and — on the first boot of an empty data directory only, and only when no definitions file
//! is configured (as RabbitMQ does) — creating the default vhost, user and permissions from
//! `default_vhost`, `default_user`, `default_pass`, `default_user_tags` and
//! `default_permissions`.

use std::collections::BTreeSet;

use super::records::{permission_definition, user_from, vhost_definition, vhost_from};
use crate::Config;
use crate::auth::{HashingAlgorithm, PasswordHash, Permissions, TopicPermission, User};
use crate::broker::Broker;
use crate::broker::vhost::VhostSettings;
use crate::store::{Definition, Recovered};

/// Creates the recovered vhosts, users and permissions. A vhost that exchanges or queues
/// name but that has no record of its own (a data directory from before vhosts were stored)
/// is created too, with default settings.
pub fn restore(broker: &Broker, recovered: &Recovered) {
    let mut named: BTreeSet<String> = BTreeSet::new();
    for def in &recovered.definitions {
        if let Some((name, settings)) = vhost_from(def) {
            broker.create_vhost(&name).set_settings(settings);
        } else if let Some(v) = def.vhost() {
            named.insert(v.to_string());
        }
    }
    for name in named {
        if broker.vhost(&name).is_none() {
            tracing::warn!("vhost '{name}' has stored definitions but no record: restoring it");
            broker.create_vhost(&name);
        }
    }
    for def in &recovered.definitions {
        match def {
            Definition::User { .. } => match user_from(def) {
                Some(Ok(user)) => broker.auth.put_user(user),
                Some(Err(e)) => tracing::error!("stored user not loaded: {e}"),
                None => {}
            },
            Definition::Permission {
                user,
                vhost,
                configure,
                write,
                read,
            } => match Permissions::new(configure, write, read) {
                Ok(p) => broker.auth.set_permissions(user, vhost, p),
                Err(e) => tracing::error!("permissions of '{user}' on '{vhost}' not loaded: {e}"),
            },
            Definition::TopicPermission {
                user,
                vhost,
                exchange,
                write,
                read,
            } => match TopicPermission::new(exchange, write, read) {
                Ok(p) => broker.auth.set_topic_permission(user, vhost, p),
                Err(e) => {
                    tracing::error!("topic permissions of '{user}' on '{vhost}' not loaded: {e}")
                }
            },
            _ => {}
        }
    }
    super::policies::restore(broker, &recovered.definitions);
}

/// The first boot's defaults, in one commit that also marks the directory as seeded (a crash
/// before it leaves the directory unseeded, and the next boot tries again). With a
/// definitions file configured, nothing is created: the file says what exists.
pub fn seed_defaults(broker: &Broker, config: &Config) -> Result<(), String> {
    let Some(store) = broker.store() else {
        return Ok(());
    };
    if config.load_definitions.is_some() {
        tracing::info!("will not seed default virtual host and user: have definitions to load");
        return store.seed(&[]).map_err(|e| e.to_string());
    }
    let [configure, write, read] = config.default_permissions.as_slice() else {
        return Err(
            "default_permissions must list three expressions: configure, write, read".into(),
        );
    };
    let permissions = Permissions::new(configure, write, read)?;
    let tags: Vec<&str> = config
        .default_user_tags
        .iter()
        .map(String::as_str)
        .collect();
    let user = User::new(
        &config.default_user,
        Some(PasswordHash::new(
            HashingAlgorithm::Sha256,
            &config.default_pass,
        )),
        &tags,
    );
    let settings = VhostSettings {
        description: "Default virtual host".into(),
        ..VhostSettings::default()
    };
    let vhost = &config.default_vhost;
    let defs = [
        vhost_definition(vhost, &settings),
        super::records::user_definition(&user),
        permission_definition(&user.name, vhost, &permissions),
    ];
    store.seed(&defs).map_err(|e| e.to_string())?;
    tracing::info!(
        "seeded default virtual host '{vhost}' and user '{}'",
        user.name
    );
    // A directory from before vhosts were stored already has `/` (restored from its exchanges).
    broker
        .vhost(vhost)
        .unwrap_or_else(|| broker.create_vhost(vhost))
        .set_settings(settings);
    let name = user.name.clone();
    broker.auth.put_user(user);
    broker.auth.set_permissions(&name, vhost, permissions);
    Ok(())
}
