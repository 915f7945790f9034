//! Reading a policy from its JSON (a PUT body, a definitions file, the store) and checking it
//! as RabbitMQ 3.10 does: the keys it accepts in a policy (and the fewer it accepts in an
//! operator policy), each value's type and range, and RabbitMQ's refusal texts
//! (`Validation failed\n\n-1 is not a valid maximum length\n`). Values are shown the way
//! Erlang prints them (`<<"x">>` for a string), as RabbitMQ's texts do.

use fancy_regex::Regex;
use serde_json::{Map, Number, Value};

use super::{ApplyTo, Policy, PolicyKind};

/// Keys an operator policy may set: numeric limits only (the lower value wins, see
/// effective.rs).
pub const OPERATOR_KEYS: [&str; 7] = [
    "expires",
    "message-ttl",
    "max-length",
    "max-length-bytes",
    "max-in-memory-length",
    "max-in-memory-bytes",
    "delivery-limit",
];

/// Every key RabbitMQ 3.10 accepts in a policy (asked of the reference broker, without the
/// federation plugin), with the check its value must pass.
const POLICY_KEYS: [(&str, Check); 28] = [
    ("alternate-exchange", Check::Text("alternate exchange name")),
    (
        "dead-letter-exchange",
        Check::Text("dead letter exchange name"),
    ),
    (
        "dead-letter-routing-key",
        Check::Text("dead letter routing key"),
    ),
    ("message-ttl", Check::Int(0, "message TTL")),
    ("expires", Check::Int(1, "queue expiry")),
    ("max-length", Check::Int(0, "maximum length")),
    ("max-length-bytes", Check::Int(0, "maximum length in bytes")),
    (
        "max-in-memory-length",
        Check::Int(0, "maximum memory in bytes"),
    ),
    (
        "max-in-memory-bytes",
        Check::Int(0, "maximum memory in bytes"),
    ),
    ("delivery-limit", Check::Int(0, "delivery limit")),
    ("initial-cluster-size", Check::Int(0, "cluster size")),
    (
        "stream-max-segment-size-bytes",
        Check::Int(0, "segment size"),
    ),
    (
        "overflow",
        Check::OneOf(
            &["drop-head", "reject-publish", "reject-publish-dlx"],
            "is not a valid overflow value",
        ),
    ),
    (
        "queue-mode",
        Check::OneOf(&["default", "lazy"], "is not a valid queue-mode value"),
    ),
    ("queue-version", Check::Version),
    (
        "dead-letter-strategy",
        Check::OneOf(
            &["at-most-once", "at-least-once"],
            "is not a valid dead letter strategy",
        ),
    ),
    (
        "queue-leader-locator",
        Check::OneOf(
            &["client-local", "balanced", "random", "least-leaders"],
            "is not a valid queue leader locator value",
        ),
    ),
    (
        "queue-master-locator",
        Check::OneOf(
            &["min-masters", "client-local", "random"],
            "invalid queue-master-locator value",
        ),
    ),
    ("max-age", Check::MaxAge),
    ("ha-mode", Check::Mirroring),
    ("ha-params", Check::Mirroring),
    ("ha-sync-mode", Check::Mirroring),
    ("ha-promote-on-shutdown", Check::Mirroring),
    ("ha-promote-on-failure", Check::Mirroring),
    ("ha-sync-batch-size", Check::Mirroring),
    // warren's own: retry with back-off (queue/retry.rs).
    ("retry-delays", Check::Delays),
    ("federation-upstream", Check::Unknown),
    ("federation-upstream-set", Check::Unknown),
];

/// How one key's value is checked.
#[derive(Clone, Copy)]
enum Check {
    /// A string: "`v` is not a valid <what>".
    Text(&'static str),
    /// An integer at least this: "`v` is not a valid <what>".
    Int(u64, &'static str),
    /// One of these strings: "`v` <text>".
    OneOf(&'static [&'static str], &'static str),
    /// `queue-version`: 1 or 2.
    Version,
    /// `max-age`: a number and a unit (`10s`, `1D`, `2Y` …).
    MaxAge,
    /// The `ha-*` keys, checked together (classic mirrored queues; no effect on one node).
    Mirroring,
    /// Keys of plugins warren does not have: refused as unknown, as a RabbitMQ without them.
    Unknown,
    /// `retry-delays`: a list of 1 to 100 delays in ms.
    Delays,
}

/// Reads a policy from `body` (`pattern`, `definition`, optional `apply-to` and `priority`).
/// `Err` is RabbitMQ's reason text, unescaped.
pub fn parse(vhost: &str, name: &str, kind: PolicyKind, body: &Value) -> Result<Policy, String> {
    let field = |key: &str| body.get(key).filter(|v| !v.is_null());
    let pattern = field("pattern").ok_or("[{key_missing,pattern}]")?;
    let definition = field("definition").ok_or("[{key_missing,definition}]")?;
    let Value::String(pattern_source) = pattern else {
        return Err(failed(format!(
            "pattern should be a binary but was {}",
            erlang(pattern)
        )));
    };
    let pattern = Regex::new(pattern_source).map_err(|e| {
        failed(format!(
            "pattern should be regular expression but is invalid: {{\"{e}\",0}}"
        ))
    })?;
    let apply_to = match field("apply-to") {
        None => ApplyTo::All,
        Some(v) => v.as_str().and_then(ApplyTo::parse).ok_or_else(|| {
            let shown = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            failed(format!(
                "apply-to '{shown}' unrecognised; should be 'queues', 'exchanges' or 'all'"
            ))
        })?,
    };
    let priority = match field("priority") {
        None => Number::from(0),
        Some(Value::Number(n)) => n.clone(),
        Some(other) => {
            return Err(failed(format!(
                "priority should be a number, actually was {}",
                erlang(other)
            )));
        }
    };
    let Value::Object(definition) = definition else {
        return Err(failed(format!(
            "definition must be a dictionary: {}",
            erlang(definition)
        )));
    };
    check_definition(kind, definition).map_err(failed)?;
    Ok(Policy {
        vhost: vhost.to_string(),
        name: name.to_string(),
        kind,
        pattern_source: pattern_source.clone(),
        pattern,
        apply_to,
        priority,
        definition: definition.clone(),
    })
}

fn failed(reason: String) -> String {
    format!("Validation failed\n\n{reason}\n")
}

/// The keys of a definition: none unknown (all reported, sorted), then each value.
fn check_definition(kind: PolicyKind, definition: &Map<String, Value>) -> Result<(), String> {
    if definition.is_empty() {
        return Err("no policy provided".into());
    }
    let check_of = |key: &str| {
        let allowed = kind == PolicyKind::Policy || OPERATOR_KEYS.contains(&key);
        POLICY_KEYS
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, check)| *check)
            .filter(|check| allowed && !matches!(check, Check::Unknown))
    };
    let mut unknown: Vec<(&String, &Value)> = definition
        .iter()
        .filter(|(k, _)| check_of(k).is_none())
        .collect();
    if !unknown.is_empty() {
        unknown.sort_by(|a, b| a.0.cmp(b.0));
        let listed: Vec<String> = unknown
            .iter()
            .map(|(k, v)| format!("{{<<\"{k}\">>,{}}}", erlang(v)))
            .collect();
        return Err(format!(
            "[{}] are not recognised policy settings",
            listed.join(",")
        ));
    }
    let mut mirroring = false;
    for (key, v) in definition {
        match check_of(key) {
            Some(Check::Mirroring) => mirroring = true,
            Some(check) => check_value(check, v)?,
            None => {}
        }
    }
    if mirroring {
        check_mirroring(definition)?;
    }
    Ok(())
}

fn check_value(check: Check, v: &Value) -> Result<(), String> {
    let shown = || erlang(v);
    let refused = match check {
        Check::Text(what) => (!v.is_string()).then(|| format!("{} is not a valid {what}", shown())),
        Check::Int(min, what) => (v.as_u64().is_none_or(|n| n < min))
            .then(|| format!("{} is not a valid {what}", shown())),
        Check::OneOf(allowed, text) => (!v.as_str().is_some_and(|s| allowed.contains(&s)))
            .then(|| format!("{} {text}", shown())),
        Check::Version => (!matches!(v.as_u64(), Some(1 | 2)))
            .then(|| format!("{} is not a valid queue-version value", shown())),
        Check::MaxAge => (!v.as_str().is_some_and(valid_max_age))
            .then(|| format!("{} is not a valid max age", shown())),
        Check::Delays => (retry_delays(v).is_none())
            .then(|| format!("{} is not a valid list of retry delays", shown())),
        Check::Mirroring | Check::Unknown => None,
    };
    refused.map_or(Ok(()), Err)
}

/// `max-age`: digits followed by one of RabbitMQ's units.
fn valid_max_age(s: &str) -> bool {
    crate::broker::queue::stream::retention::parse_max_age(s).is_some()
}

/// The `ha-*` keys, as RabbitMQ's mirroring validator checks them together.
fn check_mirroring(definition: &Map<String, Value>) -> Result<(), String> {
    let get = |k: &str| definition.get(k);
    let Some(mode) = get("ha-mode") else {
        return Err(
            "ha-mode must be specified to specify ha-params, ha-sync-mode or ha-promote-on-shutdown"
                .into(),
        );
    };
    let params = get("ha-params");
    match (mode.as_str(), params) {
        (Some("all"), None) => {}
        (Some("all"), Some(_)) => return Err("ha-mode=\"all\" does not take parameters".into()),
        (Some("exactly"), None) => {
            return Err("ha-mode=\"exactly\" takes an integer, none given".into());
        }
        (Some("exactly"), Some(p)) if p.as_u64().is_some_and(|n| n > 0) => {}
        (Some("exactly"), Some(p)) => {
            return Err(format!(
                "ha-mode=\"exactly\" takes an integer, {} given",
                erlang(p)
            ));
        }
        (Some("nodes"), None) => return Err("ha-mode=\"nodes\" takes a list, none given".into()),
        (Some("nodes"), Some(Value::Array(nodes))) if nodes.iter().all(Value::is_string) => {}
        (Some("nodes"), Some(p)) => {
            return Err(format!(
                "ha-mode=\"nodes\" takes a list of strings, {} given",
                erlang(p)
            ));
        }
        _ => return Err(format!("{} is not a valid ha-mode value", erlang(mode))),
    }
    let one_of = |key: &str, allowed: &[&str]| match get(key) {
        Some(v) if !v.as_str().is_some_and(|s| allowed.contains(&s)) => Err(format!(
            "{key} must be \"{}\" or \"{}\", got {}",
            allowed[0],
            allowed[1],
            erlang(v)
        )),
        _ => Ok(()),
    };
    one_of("ha-sync-mode", &["manual", "automatic"])?;
    one_of("ha-promote-on-shutdown", &["when-synced", "always"])?;
    one_of("ha-promote-on-failure", &["when-synced", "always"])?;
    match get("ha-sync-batch-size") {
        Some(v) if v.as_u64().is_none_or(|n| n == 0) => Err(format!(
            "ha-sync-batch-size takes an integer greater than 0, {} given",
            erlang(v)
        )),
        _ => Ok(()),
    }
}

/// A JSON value as Erlang prints the term RabbitMQ decodes it into (`<<"x">>`, `1.5`,
/// `[{<<"k">>,1}]`).
pub fn erlang(v: &Value) -> String {
    match v {
        Value::String(s) => format!("<<\"{s}\">>"),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(erlang).collect();
            format!("[{}]", items.join(","))
        }
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{{<<\"{k}\">>,{}}}", erlang(v)))
                .collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

/// A `retry-delays` value: 1 to 100 delays in ms, none over ten years (queue/retry.rs reads the
/// `x-retry-delays` argument by the same rule).
pub fn retry_delays(v: &Value) -> Option<Vec<u64>> {
    use crate::broker::queue::retry::{MAX_DELAY_MS, MAX_DELAYS};
    let items = v.as_array()?;
    if items.is_empty() || items.len() > MAX_DELAYS {
        return None;
    }
    items
        .iter()
        .map(|d| d.as_u64().filter(|ms| *ms <= MAX_DELAY_MS as u64))
        .collect()
}
