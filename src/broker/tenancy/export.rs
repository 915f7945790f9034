//! RabbitMQ's definitions export, written from what the broker holds: the whole broker (users,
//! vhosts, permissions, topic permissions, vhost limits as parameters, queues, exchanges,
//! bindings) or one vhost's topology. The same JSON RabbitMQ 3.10 writes, so that either
//! broker imports the other's export (definitions_file.rs reads it back).
//!
//! Left out as RabbitMQ leaves them out: exclusive queues, the default exchange and the
//! `amq.*` exchanges, the default exchange's implicit bindings. Policies and global parameters
//! are empty lists until warren has them.

use serde_json::{Map, Value, json};

use crate::broker::Broker;
use crate::broker::arguments_json::table_json;
use crate::broker::exchange::Destination;
use crate::broker::policy::PolicyKind;
use crate::broker::vhost::VHost;

/// The whole broker's definitions; `version` is the RabbitMQ version warren answers as.
pub fn broker_definitions(broker: &Broker, version: &str, product: &str) -> Value {
    let mut users = broker.auth.users();
    users.sort_by(|a, b| a.name.cmp(&b.name));
    let users: Vec<Value> = users
        .iter()
        .map(|u| {
            let (hash, algorithm) = match &u.password {
                Some(hash) => (hash.to_base64(), hash.algorithm().rabbit_name()),
                None => (String::new(), "rabbit_password_hashing_sha256"),
            };
            let mut limits = Map::new();
            if let Some(n) = u.limits.max_connections {
                limits.insert("max-connections".into(), n.into());
            }
            if let Some(n) = u.limits.max_channels {
                limits.insert("max-channels".into(), n.into());
            }
            json!({"name": u.name, "password_hash": hash, "hashing_algorithm": algorithm,
                   "tags": u.tags, "limits": limits})
        })
        .collect();
    let mut vhosts = broker.vhosts();
    vhosts.sort_by(|a, b| a.name.cmp(&b.name));
    let mut permissions = broker.auth.all_permissions();
    permissions.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    let mut topic_permissions = broker.auth.all_topic_permissions();
    topic_permissions.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    let mut out = Map::new();
    out.insert("rabbit_version".into(), version.into());
    out.insert("rabbitmq_version".into(), version.into());
    out.insert("product_name".into(), product.into());
    out.insert("product_version".into(), version.into());
    out.insert("users".into(), users.into());
    out.insert(
        "vhosts".into(),
        vhosts
            .iter()
            .map(|v| json!({"name": v.name.as_ref()}))
            .collect(),
    );
    out.insert(
        "permissions".into(),
        permissions
            .iter()
            .map(|(user, vhost, p)| {
                json!({"user": user, "vhost": vhost, "configure": p.configure.source(),
                       "write": p.write.source(), "read": p.read.source()})
            })
            .collect(),
    );
    out.insert(
        "topic_permissions".into(),
        topic_permissions
            .iter()
            .map(|(user, vhost, p)| {
                json!({"user": user, "vhost": vhost, "exchange": p.exchange,
                       "write": p.write, "read": p.read})
            })
            .collect(),
    );
    let with_vhost = true;
    let sections = vhosts.iter().map(|v| topology(v, with_vhost));
    let mut merged = Topology::default();
    for section in sections {
        merged.parameters.extend(section.parameters);
        merged.queues.extend(section.queues);
        merged.exchanges.extend(section.exchanges);
        merged.bindings.extend(section.bindings);
    }
    out.insert("parameters".into(), merged.parameters.into());
    out.insert("global_parameters".into(), json!([]));
    let policies: Vec<Value> = broker
        .all_policies(PolicyKind::Policy)
        .iter()
        .map(|p| p.to_json())
        .collect();
    out.insert("policies".into(), policies.into());
    out.insert("queues".into(), merged.queues.into());
    out.insert("exchanges".into(), merged.exchanges.into());
    out.insert("bindings".into(), merged.bindings.into());
    Value::Object(out)
}

/// One vhost's definitions, without `vhost` fields, as RabbitMQ exports a vhost.
pub fn vhost_definitions(vhost: &VHost, version: &str) -> Value {
    let t = topology(vhost, false);
    json!({
        "rabbit_version": version,
        "parameters": t.parameters,
        "policies": vhost.policies().all(PolicyKind::Policy).iter().map(|p| p.to_json()).collect::<Vec<_>>(),
        "queues": t.queues,
        "exchanges": t.exchanges,
        "bindings": t.bindings,
    })
}

#[derive(Default)]
struct Topology {
    parameters: Vec<Value>,
    queues: Vec<Value>,
    exchanges: Vec<Value>,
    bindings: Vec<Value>,
}

/// A vhost's limits, queues, exchanges and bindings; `with_vhost` adds `"vhost"` to each.
fn topology(vhost: &VHost, with_vhost: bool) -> Topology {
    let tag = |mut v: Value| {
        if with_vhost && let Value::Object(map) = &mut v {
            map.insert("vhost".into(), vhost.name.as_ref().into());
        }
        v
    };
    let mut t = Topology::default();
    let limits = vhost.limits();
    let mut limit_values = Map::new();
    if let Some(n) = limits.max_connections {
        limit_values.insert("max-connections".into(), n.into());
    }
    if let Some(n) = limits.max_queues {
        limit_values.insert("max-queues".into(), n.into());
    }
    if !limit_values.is_empty() {
        // Parameters always name their vhost, in either export.
        t.parameters.push(
            json!({"vhost": vhost.name.as_ref(), "component": "vhost-limits",
                                 "name": "limits", "value": limit_values}),
        );
    }
    let mut queues = vhost.queues();
    queues.retain(|q| q.options.exclusive_owner.is_none());
    queues.sort_by(|a, b| a.name.cmp(&b.name));
    t.queues = queues
        .iter()
        .map(|q| {
            tag(
                json!({"name": q.name.as_ref(), "durable": q.options.durable,
                       "auto_delete": q.options.auto_delete,
                       "arguments": table_json(q.options.arguments.declared())}),
            )
        })
        .collect();
    let mut exchanges = vhost.exchanges();
    exchanges.retain(|x| !x.name.is_empty() && !x.name.starts_with("amq."));
    exchanges.sort_by(|a, b| a.name.cmp(&b.name));
    t.exchanges = exchanges
        .iter()
        .map(|x| {
            tag(json!({"name": x.name.as_ref(), "type": x.kind().as_str(),
                       "durable": x.options.durable, "auto_delete": x.options.auto_delete,
                       "internal": x.options.internal,
                       "arguments": table_json(&x.options.arguments)}))
        })
        .collect();
    let exclusive = |name: &str| {
        vhost
            .queue(name)
            .is_some_and(|q| q.options.exclusive_owner.is_some())
    };
    t.bindings = vhost
        .list_bindings()
        .iter()
        .filter(|l| !l.source.is_empty())
        .filter_map(|l| {
            let (destination, kind) = match &l.binding.destination {
                Destination::Queue(name) if exclusive(name) => return None,
                Destination::Queue(name) => (name, "queue"),
                Destination::Exchange(name) => (name, "exchange"),
            };
            Some(tag(
                json!({"source": l.source.as_ref(), "destination": destination.as_ref(),
                            "destination_type": kind, "routing_key": l.binding.routing_key,
                            "arguments": table_json(&l.binding.arguments)}),
            ))
        })
        .collect();
    t
}
