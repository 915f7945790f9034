//! `warren ctl` verbs for policies and operator policies, as rabbitmqctl has them:
//! `set_policy [-p vhost] [--priority N] [--apply-to queues|exchanges|all] name pattern
//! definition`, `clear_policy`, `list_policies`, and the `*_operator_policy` twins. The
//! definition is JSON text, as rabbitmqctl takes it; the broker's management API checks it.

use clap::Args;
use serde_json::{Value, json};

use super::http::{self, Api};
use super::output::{self, Formatter};
use super::{VhostArg, println_info};

#[derive(Args, Debug)]
pub struct SetPolicy {
    #[command(flatten)]
    vhost: VhostArg,
    /// Of the policies that match an object, the one of highest priority applies.
    #[arg(long, default_value = "0")]
    priority: String,
    /// What the policy applies to: queues, exchanges or all.
    #[arg(long = "apply-to", default_value = "all")]
    apply_to: String,
    name: String,
    /// A regular expression matched against queue and exchange names.
    pattern: String,
    /// The settings, as JSON (e.g. '{"max-length":1000}').
    definition: String,
}

#[derive(Args, Debug)]
pub struct ClearPolicy {
    #[command(flatten)]
    vhost: VhostArg,
    name: String,
}

#[derive(Args, Debug)]
pub struct ListPolicies {
    #[command(flatten)]
    vhost: VhostArg,
}

/// Policies or operator policies: where they live in the API and how rabbitmqctl names them.
#[derive(Clone, Copy)]
pub enum Kind {
    Policy,
    Operator,
}

impl Kind {
    fn api(self) -> &'static str {
        match self {
            Kind::Policy => "policies",
            Kind::Operator => "operator-policies",
        }
    }
}

pub fn set(api: &Api, fmt: Formatter, kind: Kind, args: SetPolicy) -> Result<(), String> {
    let SetPolicy {
        vhost,
        priority,
        apply_to,
        name,
        pattern,
        definition,
    } = args;
    let what = match kind {
        Kind::Policy => "policy",
        Kind::Operator => "operator policy override",
    };
    println_info(
        fmt,
        &format!(
            "Setting {what} \"{name}\" for pattern \"{pattern}\" to \"{definition}\" with priority \"{priority}\" for vhost \"{}\" ...",
            vhost.vhost
        ),
    );
    let definition: Value = serde_json::from_str(&definition)
        .map_err(|e| format!("the definition is not JSON: {e}"))?;
    let priority: Value = serde_json::from_str(&priority)
        .ok()
        .filter(Value::is_number)
        .ok_or_else(|| format!("priority must be a number, got {priority}"))?;
    let body = json!({"pattern": pattern, "definition": definition, "priority": priority,
                      "apply-to": apply_to});
    api.put(&object_path(kind, &vhost.vhost, &name), &body)
        .map_err(|e| unescape(&e))
}

pub fn clear(api: &Api, fmt: Formatter, kind: Kind, args: ClearPolicy) -> Result<(), String> {
    let what = match kind {
        Kind::Policy => "policy",
        Kind::Operator => "operator policy",
    };
    println_info(
        fmt,
        &format!(
            "Clearing {what} \"{}\" on vhost \"{}\" ...",
            args.name, args.vhost.vhost
        ),
    );
    let path = object_path(kind, &args.vhost.vhost, &args.name);
    match api.get_optional(&path)? {
        Some(_) => api.delete(&path),
        None => Err("Parameter does not exist".into()),
    }
}

pub fn list(api: &Api, fmt: Formatter, kind: Kind, args: ListPolicies) -> Result<(), String> {
    let what = match kind {
        Kind::Policy => "policies",
        Kind::Operator => "operator policy overrides",
    };
    println_info(
        fmt,
        &format!("Listing {what} for vhost \"{}\" ...", args.vhost.vhost),
    );
    let mut rows = api.get(&format!(
        "/api/{}/{}",
        kind.api(),
        http::encode(&args.vhost.vhost)
    ))?;
    // rabbitmqctl shows the definition as JSON text, in both formats.
    for row in rows.as_array_mut().into_iter().flatten() {
        let text = row["definition"].to_string();
        row["definition"] = Value::String(text);
    }
    let columns = [
        "vhost",
        "name",
        "pattern",
        "apply-to",
        "definition",
        "priority",
    ];
    output::table(fmt, &rows, &columns.map(String::from));
    Ok(())
}

fn object_path(kind: Kind, vhost: &str, name: &str) -> String {
    format!(
        "/api/{}/{}/{}",
        kind.api(),
        http::encode(vhost),
        http::encode(name)
    )
}

/// The API escapes `<` and `>` in a policy's refusal (as RabbitMQ's does); a terminal wants
/// them plain, as rabbitmqctl prints them.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">")
}
