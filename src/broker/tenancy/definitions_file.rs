//! RabbitMQ's definitions file (`rabbitmqctl export_definitions`, the management UI's export):
//! importing one at boot (`load_definitions`) creates or updates what it lists — users (their
//! hashes as exported, or a plaintext `password`), vhosts, permissions, topic permissions,
//! vhost limits (`parameters` of component `vhost-limits`), policies, exchanges, queues and
//! bindings — and leaves everything else alone, as RabbitMQ's import does. Sections warren
//! does not implement (global parameters) are reported in the log, not refused.
//!
//! Goes through the broker's own operations, so an import is exactly as durable as the same
//! changes made one by one.

use std::collections::BTreeMap;
use std::path::Path;

use amq_protocol::types::{AMQPValue, FieldArray, FieldTable, LongString};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::users::parse_tags;
use crate::auth::{HashingAlgorithm, PasswordHash, User, UserLimits};
use crate::broker::Broker;
use crate::broker::exchange::{Binding, Destination, ExchangeKind, ExchangeOptions};
use crate::broker::policy::PolicyKind;
use crate::broker::queue::QueueDeclaration;
use crate::broker::vhost::{VhostLimits, VhostSettings};

#[derive(Deserialize, Default)]
#[serde(default)]
struct Definitions {
    users: Vec<UserDef>,
    vhosts: Vec<VhostDef>,
    permissions: Vec<PermissionDef>,
    topic_permissions: Vec<TopicPermissionDef>,
    parameters: Vec<ParameterDef>,
    policies: Vec<Value>,
    global_parameters: Vec<Value>,
    exchanges: Vec<ExchangeDef>,
    queues: Vec<QueueDef>,
    bindings: Vec<BindingDef>,
}

#[derive(Deserialize)]
struct UserDef {
    name: String,
    #[serde(default)]
    password_hash: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    hashing_algorithm: Option<String>,
    #[serde(default)]
    tags: Tags,
    #[serde(default)]
    limits: Value,
}

/// `"administrator,monitoring"` (3.x exports) or `["administrator", "monitoring"]`.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Tags {
    #[default]
    None,
    Text(String),
    List(Vec<String>),
}

/// 3.10 exports write `"limits": []` and put description and tags under `metadata`; older
/// files have them at the top level.
#[derive(Deserialize)]
struct VhostDef {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Tags,
    #[serde(default)]
    metadata: Option<VhostMetadata>,
    #[serde(default)]
    limits: Value,
}

#[derive(Deserialize, Default)]
struct VhostMetadata {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Tags,
}

#[derive(Deserialize)]
struct PermissionDef {
    user: String,
    vhost: String,
    configure: String,
    write: String,
    read: String,
}

#[derive(Deserialize)]
struct TopicPermissionDef {
    user: String,
    vhost: String,
    exchange: String,
    write: String,
    read: String,
}

#[derive(Deserialize)]
struct ParameterDef {
    vhost: String,
    component: String,
    #[serde(default)]
    value: Value,
}

#[derive(Deserialize)]
struct ExchangeDef {
    name: String,
    vhost: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default = "yes")]
    durable: bool,
    #[serde(default)]
    auto_delete: bool,
    #[serde(default)]
    internal: bool,
    #[serde(default)]
    arguments: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
struct QueueDef {
    name: String,
    vhost: String,
    #[serde(default = "yes")]
    durable: bool,
    #[serde(default)]
    auto_delete: bool,
    #[serde(default)]
    arguments: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
struct BindingDef {
    source: String,
    vhost: String,
    destination: String,
    destination_type: String,
    #[serde(default)]
    routing_key: String,
    #[serde(default)]
    arguments: serde_json::Map<String, Value>,
}

fn yes() -> bool {
    true
}

impl Tags {
    fn list(&self) -> Vec<String> {
        match self {
            Tags::None => Vec::new(),
            Tags::Text(t) => parse_tags(t),
            Tags::List(l) => l.iter().filter(|t| !t.is_empty()).cloned().collect(),
        }
    }
}

/// What an import did, for the boot log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Imported {
    pub users: usize,
    pub vhosts: usize,
    pub permissions: usize,
    pub policies: usize,
    pub exchanges: usize,
    pub queues: usize,
    pub bindings: usize,
}

/// Reads and imports a definitions file; the first problem stops it, with its reason.
pub fn import_file(broker: &Broker, path: &Path) -> Result<Imported, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read definitions file {}: {e}", path.display()))?;
    import_json(broker, &text).map_err(|e| format!("definitions file {}: {e}", path.display()))
}

pub fn import_json(broker: &Broker, text: &str) -> Result<Imported, String> {
    let defs: Definitions =
        serde_json::from_str(text).map_err(|e| format!("not valid definitions JSON: {e}"))?;
    let mut imported = Imported::default();
    for u in &defs.users {
        broker
            .put_user(user(u)?)
            .map_err(|e| format!("user '{}': {e}", u.name))?;
        imported.users += 1;
    }
    for v in &defs.vhosts {
        let mut settings = broker
            .vhost(&v.name)
            .map(|x| x.settings())
            .unwrap_or_default();
        let metadata = v.metadata.as_ref();
        settings.description = v
            .description
            .clone()
            .or_else(|| metadata.and_then(|m| m.description.clone()))
            .unwrap_or_default();
        settings.tags = match (&v.tags, metadata) {
            (Tags::None, Some(m)) => m.tags.list(),
            (tags, _) => tags.list(),
        };
        let limits = limits_map(&v.limits);
        if !limits.is_empty() {
            settings.limits = vhost_limits(&limits)?;
        }
        broker
            .put_vhost(&v.name, settings)
            .map_err(|e| format!("vhost '{}': {e}", v.name))?;
        imported.vhosts += 1;
    }
    for p in &defs.parameters {
        if p.component == "vhost-limits" {
            let Value::Object(limits) = &p.value else {
                return Err(format!("vhost-limits of '{}' is not an object", p.vhost));
            };
            let limits: BTreeMap<String, Value> = limits.clone().into_iter().collect();
            let mut settings: VhostSettings = broker
                .vhost(&p.vhost)
                .map(|x| x.settings())
                .ok_or_else(|| format!("vhost-limits for unknown vhost '{}'", p.vhost))?;
            settings.limits = vhost_limits(&limits)?;
            broker
                .put_vhost(&p.vhost, settings)
                .map_err(|e| format!("vhost '{}': {e}", p.vhost))?;
        } else {
            tracing::warn!(
                "definitions: parameter component '{}' not supported; skipped",
                p.component
            );
        }
    }
    for p in &defs.permissions {
        broker
            .set_permissions(&p.user, &p.vhost, &p.configure, &p.write, &p.read)
            .map_err(|e| format!("permissions of '{}' on '{}': {e}", p.user, p.vhost))?;
        imported.permissions += 1;
    }
    for p in &defs.topic_permissions {
        broker
            .set_topic_permission(&p.user, &p.vhost, &p.exchange, &p.write, &p.read)
            .map_err(|e| format!("topic permissions of '{}' on '{}': {e}", p.user, p.vhost))?;
    }
    for p in &defs.policies {
        let field = |key: &str| p.get(key).and_then(Value::as_str).unwrap_or_default();
        let (vhost, name) = (field("vhost"), field("name"));
        broker
            .put_policy(vhost, name, PolicyKind::Policy, p)
            .map_err(|e| format!("policy '{name}' in vhost '{vhost}': {e}"))?;
        imported.policies += 1;
    }
    if !defs.global_parameters.is_empty() {
        tracing::warn!(
            "definitions: {} global parameters not supported yet; skipped",
            defs.global_parameters.len()
        );
    }
    import_topology(broker, &defs, &mut imported)?;
    Ok(imported)
}

fn import_topology(
    broker: &Broker,
    defs: &Definitions,
    imported: &mut Imported,
) -> Result<(), String> {
    let vhost = |name: &str| {
        broker
            .vhost(name)
            .ok_or_else(|| format!("vhost '{name}' not found"))
    };
    for x in &defs.exchanges {
        let v = vhost(&x.vhost)?;
        if x.name.is_empty() || (x.name.starts_with("amq.") && v.exchange(&x.name).is_some()) {
            continue;
        }
        let kind = ExchangeKind::parse(&x.kind)
            .ok_or_else(|| format!("exchange '{}': unknown type '{}'", x.name, x.kind))?;
        let options = ExchangeOptions {
            kind,
            durable: x.durable,
            auto_delete: x.auto_delete,
            internal: x.internal,
            arguments: table(&x.arguments),
        };
        v.declare_exchange(&x.name, options, false)
            .map_err(|e| format!("exchange '{}' in vhost '{}': {}", x.name, x.vhost, e.text))?;
        imported.exchanges += 1;
    }
    for q in &defs.queues {
        let declaration = QueueDeclaration {
            durable: q.durable,
            exclusive_owner: None,
            auto_delete: q.auto_delete,
            arguments: table(&q.arguments),
        };
        vhost(&q.vhost)?
            .declare_queue(&q.name, declaration, false, 0)
            .map_err(|e| format!("queue '{}' in vhost '{}': {}", q.name, q.vhost, e.text))?;
        imported.queues += 1;
    }
    for b in &defs.bindings {
        let destination = match b.destination_type.as_str() {
            "queue" => Destination::Queue(b.destination.as_str().into()),
            "exchange" => Destination::Exchange(b.destination.as_str().into()),
            other => return Err(format!("binding: unknown destination_type '{other}'")),
        };
        let binding = Binding {
            destination,
            routing_key: b.routing_key.clone(),
            arguments: table(&b.arguments),
        };
        vhost(&b.vhost)?.bind(&b.source, binding, 0).map_err(|e| {
            format!(
                "binding from '{}' in vhost '{}': {}",
                b.source, b.vhost, e.text
            )
        })?;
        imported.bindings += 1;
    }
    Ok(())
}

fn user(u: &UserDef) -> Result<User, String> {
    let password = match (&u.password_hash, &u.password) {
        (Some(hash), _) if !hash.is_empty() => {
            let name = u
                .hashing_algorithm
                .as_deref()
                .unwrap_or("rabbit_password_hashing_sha256");
            let algorithm = HashingAlgorithm::from_rabbit_name(name).ok_or_else(|| {
                format!("user '{}': unsupported hashing_algorithm {name}", u.name)
            })?;
            Some(
                PasswordHash::from_base64(algorithm, hash)
                    .map_err(|e| format!("user '{}': {e}", u.name))?,
            )
        }
        (_, Some(plain)) if !plain.is_empty() => {
            Some(PasswordHash::new(HashingAlgorithm::Sha256, plain))
        }
        _ => None,
    };
    Ok(User {
        name: u.name.clone(),
        password,
        tags: u.tags.list(),
        limits: UserLimits {
            max_connections: limit(&limits_map(&u.limits), "max-connections")?,
            max_channels: limit(&limits_map(&u.limits), "max-channels")?,
        },
    })
}

fn vhost_limits(limits: &BTreeMap<String, Value>) -> Result<VhostLimits, String> {
    Ok(VhostLimits {
        max_connections: limit(limits, "max-connections")?,
        max_queues: limit(limits, "max-queues")?,
    })
}

/// Limits as an object; anything else (3.10 exports `[]` for none) is none.
fn limits_map(value: &Value) -> BTreeMap<String, Value> {
    match value {
        Value::Object(map) => map.clone().into_iter().collect(),
        _ => BTreeMap::new(),
    }
}

/// A limit as RabbitMQ writes it: an integer, negative for none.
fn limit(limits: &BTreeMap<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match limits.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(v) => Ok(u64::try_from(v).ok()),
            None => Err(format!("{key} must be an integer, not {n}")),
        },
        Some(other) => Err(format!("{key} must be an integer, not {other}")),
    }
}

/// JSON arguments as AMQP field values, as RabbitMQ's management API maps them: integers to
/// 64-bit signed, other numbers to doubles, strings to long strings.
pub fn table(arguments: &serde_json::Map<String, Value>) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in arguments {
        // Keys past 255 bytes cannot be AMQP short strings: such an argument is dropped.
        if k.len() <= 255 {
            t.insert(k.as_str().into(), value(v, 0));
        }
    }
    t
}

/// Nesting deeper than this becomes void: a definitions file cannot make us recurse without
/// bound.
const MAX_DEPTH: usize = 32;

fn value(v: &Value, depth: usize) -> AMQPValue {
    if depth > MAX_DEPTH {
        return AMQPValue::Void;
    }
    match v {
        Value::Null => AMQPValue::Void,
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => AMQPValue::LongLongInt(i),
            None => AMQPValue::Double(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => AMQPValue::LongString(LongString::from(s.as_bytes().to_vec())),
        Value::Array(a) => AMQPValue::FieldArray(FieldArray::from(
            a.iter().map(|x| value(x, depth + 1)).collect::<Vec<_>>(),
        )),
        Value::Object(o) => {
            let mut t = FieldTable::default();
            for (k, x) in o {
                if k.len() <= 255 {
                    t.insert(k.as_str().into(), value(x, depth + 1));
                }
            }
            AMQPValue::FieldTable(t)
        }
    }
}

#[cfg(test)]
mod tests;
