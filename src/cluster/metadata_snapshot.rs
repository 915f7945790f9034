//! The metadata group's snapshot: every replicated definition of this node's broker as the
//! [`Change`]s that recreate it, and installing one (a node that fell behind the leader's
//! purged log): apply each, then remove what the snapshot does not hold.
//!
//! What is not replicated stays out of both: the default and `amq.*` exchanges (every vhost
//! has its own), exclusive queues and the bindings to them.

use std::collections::HashSet;

use crate::broker::Broker;
use crate::broker::policy::PolicyKind;
use crate::broker::replication::{BindingChange, Change, apply};
use crate::broker::tenancy::records::{user_definition, vhost_definition};
use crate::store::Definition;

/// Every replicated definition, in an order that applies cleanly (vhosts and users before
/// what names them, exchanges and queues before bindings).
pub fn changes_of(broker: &Broker) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut vhosts = broker.vhosts();
    vhosts.sort_by(|a, b| a.name.cmp(&b.name));
    for vhost in &vhosts {
        changes.push(Change::PutVhost {
            record: vhost_definition(&vhost.name, &vhost.settings()).encode(),
        });
    }
    for user in broker.auth.users() {
        changes.push(Change::PutUser {
            record: user_definition(&user).encode(),
        });
    }
    for (user, vhost, p) in broker.auth.all_permissions() {
        changes.push(Change::SetPermissions {
            user,
            vhost,
            configure: p.configure.source().to_string(),
            write: p.write.source().to_string(),
            read: p.read.source().to_string(),
        });
    }
    for (user, vhost, p) in broker.auth.all_topic_permissions() {
        changes.push(Change::SetTopicPermission {
            user,
            vhost,
            exchange: p.exchange,
            write: p.write,
            read: p.read,
        });
    }
    for kind in [PolicyKind::Policy, PolicyKind::Operator] {
        for policy in broker.all_policies(kind) {
            changes.push(Change::PutPolicy {
                vhost: policy.vhost.clone(),
                name: policy.name.clone(),
                operator: kind == PolicyKind::Operator,
                body: policy.body_json().to_string(),
            });
        }
    }
    for vhost in &vhosts {
        let name = vhost.name.to_string();
        for x in vhost.exchanges() {
            if x.name.is_empty() || x.name.starts_with("amq.") {
                continue;
            }
            changes.push(Change::DeclareExchange {
                vhost: name.clone(),
                name: x.name.to_string(),
                kind: x.kind().as_str().to_string(),
                durable: x.options.durable,
                auto_delete: x.options.auto_delete,
                internal: x.options.internal,
                arguments: x.options.arguments.clone(),
            });
        }
        for q in vhost.queues() {
            if q.options.exclusive_owner.is_some() {
                continue;
            }
            changes.push(Change::DeclareQueue {
                vhost: name.clone(),
                name: q.name.to_string(),
                generated: q.name.starts_with("amq."),
                durable: q.options.durable,
                auto_delete: q.options.auto_delete,
                arguments: q.options.arguments.declared().clone(),
                group: q.replica().map_or(0, |r| r.group()),
            });
        }
        for listed in vhost.list_bindings() {
            let binding = BindingChange::new(&name, &listed.source, &listed.binding);
            let exclusive = !binding.to_exchange
                && vhost
                    .queue(&binding.destination)
                    .is_some_and(|q| q.options.exclusive_owner.is_some());
            if !listed.source.is_empty() && !exclusive {
                changes.push(Change::Bind(binding));
            }
        }
    }
    changes
}

/// Makes this node's definitions those of the snapshot.
pub fn install(broker: &Broker, changes: &[Change]) {
    for change in changes {
        apply(broker, change);
    }
    // What is here and not in the snapshot goes: compare what this node would snapshot.
    let wanted: HashSet<Vec<u8>> = changes.iter().map(identity).collect();
    let mut extra: Vec<Change> = changes_of(broker)
        .into_iter()
        .filter(|c| !wanted.contains(&identity(c)))
        .filter_map(undo)
        .collect();
    // Bindings first, vhosts and users last.
    extra.sort_by_key(undo_order);
    for change in extra {
        apply(broker, &change);
    }
}

/// What names a definition, whatever its settings.
fn identity(change: &Change) -> Vec<u8> {
    let key = match change {
        Change::PutVhost { record } | Change::PutUser { record } => {
            match Definition::decode(record) {
                Ok(def) => return def.key().to_vec(),
                Err(_) => return Vec::new(),
            }
        }
        Change::SetPermissions { user, vhost, .. } => format!("p\0{user}\0{vhost}"),
        Change::SetTopicPermission {
            user,
            vhost,
            exchange,
            ..
        } => {
            format!("t\0{user}\0{vhost}\0{exchange}")
        }
        Change::PutPolicy {
            vhost,
            name,
            operator,
            ..
        } => format!("P\0{vhost}\0{name}\0{operator}"),
        Change::DeclareExchange { vhost, name, .. } => format!("e\0{vhost}\0{name}"),
        // A quorum queue declared again under the same name is another queue (another group).
        Change::DeclareQueue {
            vhost, name, group, ..
        } => format!("q\0{vhost}\0{name}\0{group}"),
        Change::Bind(b) => format!(
            "b\0{}\0{}\0{}\0{}\0{}\0{:?}",
            b.vhost, b.source, b.to_exchange, b.destination, b.routing_key, b.arguments
        ),
        other => format!("{other:?}"),
    };
    key.into_bytes()
}

/// The change that removes what `change` creates.
fn undo(change: Change) -> Option<Change> {
    Some(match change {
        Change::PutVhost { record } => match Definition::decode(&record).ok()? {
            Definition::VHost { name, .. } => Change::DeleteVhost { name },
            _ => return None,
        },
        Change::PutUser { record } => match Definition::decode(&record).ok()? {
            Definition::User { name, .. } => Change::DeleteUser { name },
            _ => return None,
        },
        Change::SetPermissions { user, vhost, .. } => Change::ClearPermissions { user, vhost },
        Change::SetTopicPermission {
            user,
            vhost,
            exchange,
            ..
        } => Change::ClearTopicPermissions {
            user,
            vhost,
            exchange: Some(exchange),
        },
        Change::PutPolicy {
            vhost,
            name,
            operator,
            ..
        } => Change::DeletePolicy {
            vhost,
            name,
            operator,
        },
        Change::DeclareExchange { vhost, name, .. } => Change::DeleteExchange {
            vhost,
            name,
            if_unused: false,
        },
        Change::DeclareQueue { vhost, name, .. } => Change::DeleteQueue { vhost, name },
        Change::Bind(b) => Change::Unbind(b),
        _ => return None,
    })
}

fn undo_order(change: &Change) -> u8 {
    match change {
        Change::Unbind(_) => 0,
        Change::DeleteExchange { .. } | Change::DeleteQueue { .. } => 1,
        Change::DeletePolicy { .. }
        | Change::ClearPermissions { .. }
        | Change::ClearTopicPermissions { .. } => 2,
        _ => 3,
    }
}
