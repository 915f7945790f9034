//! The management API answers as RabbitMQ 3.10 does: every call of `calls.json`, made in order
//! against a fresh warren, compared with what the reference broker answered to the same call
//! (`rabbitmq.json`, written by `record_rabbitmq.py`): the same status code and challenge, and
//! every key of RabbitMQ's body present with the same JSON type (whole bodies equal where the
//! call says `exact`: error reasons, health checks, permissions).

use serde_json::Value;

use crate::common::http::Http;
use crate::common::*;

const CALLS: &str = include_str!("calls.json");
const RECORDED: &str = include_str!("rabbitmq.json");

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// What warren's body lacks of RabbitMQ's: missing keys and different types, by path. Lists
/// are compared by their first elements (their lengths differ with what each broker holds);
/// objects keyed by node name (`cluster_state`) by their first values.
fn shape_differences(path: &str, rabbit: &Value, warren: &Value, out: &mut Vec<String>) {
    let by_node = |map: &serde_json::Map<String, Value>| map.keys().all(|k| k.contains('@'));
    match (rabbit, warren) {
        (Value::Object(r), Value::Object(w)) if !r.is_empty() && by_node(r) => {
            match (r.values().next(), w.values().next()) {
                (Some(rv), Some(wv)) if by_node(w) => {
                    shape_differences(&format!("{path}.<node>"), rv, wv, out)
                }
                _ => out.push(format!("{path}: not keyed by node name in warren")),
            }
        }
        (Value::Object(r), Value::Object(w)) => {
            for (key, rv) in r {
                match w.get(key) {
                    None => out.push(format!("{path}.{key}: missing")),
                    Some(wv) => shape_differences(&format!("{path}.{key}"), rv, wv, out),
                }
            }
        }
        (Value::Array(r), Value::Array(w)) => {
            if let (Some(rf), Some(wf)) = (r.first(), w.first()) {
                shape_differences(&format!("{path}[0]"), rf, wf, out);
            } else if !r.is_empty() {
                out.push(format!("{path}: empty in warren, not in RabbitMQ"));
            }
        }
        (r, w) if type_name(r) != type_name(w) => out.push(format!(
            "{path}: {} in RabbitMQ, {} in warren",
            type_name(r),
            type_name(w)
        )),
        _ => {}
    }
}

/// Replaces the reference broker's AMQP port, where an exact body names it, with warren's.
fn with_port(v: &Value, from: u64, to: u64) -> Value {
    match v {
        Value::Number(n) if n.as_u64() == Some(from) => Value::from(to),
        Value::Array(items) => items.iter().map(|i| with_port(i, from, to)).collect(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), with_port(v, from, to)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        other => other.clone(),
    }
}

#[test]
fn every_recorded_call_answers_with_rabbitmqs_status_and_shape() {
    // Also runs against the reference broker (WARREN_TEST_AMQP_URL): the recording checks itself.
    let broker = TestBroker::start();
    let http = Http::new(&broker.management_url());
    let calls: Value = serde_json::from_str(CALLS).unwrap();
    let recorded: Value = serde_json::from_str(RECORDED).unwrap();
    let rabbit_port = recorded["amqp_port"].as_u64().unwrap();
    let port = u64::from(broker.addr().port());
    let mut problems = Vec::new();
    for call in calls["calls"].as_array().unwrap() {
        let name = call["name"].as_str().unwrap();
        let user = call["user"].as_str().unwrap_or("guest");
        let password = call["password"].as_str().unwrap_or(match user {
            "guest" => "guest",
            "rec-u" => "rec-p",
            _ => "",
        });
        let body = call["raw_body"]
            .as_str()
            .map(str::to_string)
            .or_else(|| call.get("body").map(Value::to_string));
        let path = call["path"]
            .as_str()
            .unwrap()
            .replace("{amqp_port}", &port.to_string());
        let method = call["method"].as_str().unwrap();
        let answer = http.call(method, &path, user, password, body.as_deref());
        let expected = &recorded["answers"][name];
        if answer.status != expected["status"].as_u64().unwrap() as u16 {
            problems.push(format!(
                "{name}: status {} (RabbitMQ: {}), body {}",
                answer.status, expected["status"], answer.body
            ));
            continue;
        }
        if answer.www_authenticate.as_deref() != expected["www_authenticate"].as_str() {
            problems.push(format!(
                "{name}: WWW-Authenticate {:?} (RabbitMQ: {})",
                answer.www_authenticate, expected["www_authenticate"]
            ));
        }
        let rabbit_body = with_port(&expected["body"], rabbit_port, port);
        if call["exact"].as_bool() == Some(true) {
            if answer.body != rabbit_body {
                problems.push(format!(
                    "{name}: body {} (RabbitMQ: {rabbit_body})",
                    answer.body
                ));
            }
        } else {
            let mut differences = Vec::new();
            shape_differences("", &rabbit_body, &answer.body, &mut differences);
            for d in differences {
                problems.push(format!("{name}: {d}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} differences from RabbitMQ 3.10:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
