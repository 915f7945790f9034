//! The management API answers as RabbitMQ 3.10 does: every call of `calls.json`, made in order
//! against a fresh warren, compared with what the reference broker answered to the same call
//! (`rabbitmq.json`, written by `record_rabbitmq.py`): the same status code and challenge, and
//! every key of RabbitMQ's body present with the same JSON type (whole bodies equal where the
//! call says `exact`: error reasons, health checks, permissions).

use serde_json::Value;

use crate::common::http::{Http, path_segment as encode};
use crate::common::*;

const CALLS: &str = include_str!("calls.json");

/// Keys RabbitMQ shows that warren has nothing true to put in: Erlang VM figures of the
/// process behind an object, and when a channel last did something (not tracked).
const NOT_KEPT: [&str; 4] = [
    "garbage_collection",
    "reductions",
    "reductions_details",
    "idle_since",
];
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
fn shape_differences(
    path: &str,
    rabbit: &Value,
    warren: &Value,
    not_kept: &[&str],
    out: &mut Vec<String>,
) {
    let by_node = |map: &serde_json::Map<String, Value>| map.keys().all(|k| k.contains('@'));
    match (rabbit, warren) {
        (Value::Object(r), Value::Object(w)) if !r.is_empty() && by_node(r) => {
            match (r.values().next(), w.values().next()) {
                (Some(rv), Some(wv)) if by_node(w) => {
                    shape_differences(&format!("{path}.<node>"), rv, wv, not_kept, out)
                }
                _ => out.push(format!("{path}: not keyed by node name in warren")),
            }
        }
        (Value::Object(r), Value::Object(w)) => {
            for (key, rv) in r {
                if NOT_KEPT.contains(&key.as_str()) || not_kept.iter().any(|p| key.starts_with(p)) {
                    continue;
                }
                match w.get(key) {
                    None => out.push(format!("{path}.{key}: missing")),
                    Some(wv) => shape_differences(&format!("{path}.{key}"), rv, wv, not_kept, out),
                }
            }
        }
        (Value::Array(r), Value::Array(w)) => {
            if let (Some(rf), Some(wf)) = (r.first(), w.first()) {
                shape_differences(&format!("{path}[0]"), rf, wf, not_kept, out);
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

/// What the recorder's AMQP step does: a connection (the raw client's properties), channel 1
/// with basic.qos 10, a consumer tagged rec-ctag on `queue`, and `publish` messages to `queue`
/// on that channel (delivered to that consumer, left unacked).
async fn consumer_on(broker: &TestBroker, queue: &str, publish: u64) -> RawClient {
    use amq_protocol::protocol::{AMQPClass, basic};
    let mut client = RawClient::connect(broker.addr()).await;
    client.handshake().await;
    client.open_channel(1).await;
    let qos = basic::Qos {
        prefetch_count: 10,
        global: false,
    };
    client
        .rpc(1, AMQPClass::Basic(basic::AMQPMethod::Qos(qos)))
        .await;
    let consume = basic::Consume {
        queue: queue.into(),
        consumer_tag: "rec-ctag".into(),
        no_local: false,
        no_ack: false,
        exclusive: false,
        nowait: false,
        arguments: Default::default(),
    };
    client
        .rpc(1, AMQPClass::Basic(basic::AMQPMethod::Consume(consume)))
        .await;
    for _ in 0..publish {
        client.publish(1, "", queue, false, false, b"rec").await;
    }
    // Delivered: the broker has counted them.
    for _ in 0..publish {
        client.recv_method().await;
        client.recv_content_header(1).await;
        client.recv_content_body(1).await;
    }
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recorded_call_answers_with_rabbitmqs_status_and_shape() {
    // Also runs against the reference broker (WARREN_TEST_AMQP_URL): the recording checks itself.
    let broker = TestBroker::start();
    let http = Http::new(&broker.management_url());
    let calls: Value = serde_json::from_str(CALLS).unwrap();
    let recorded: Value = serde_json::from_str(RECORDED).unwrap();
    let rabbit_port = recorded["amqp_port"].as_u64().unwrap();
    let port = u64::from(broker.addr().port());
    let mut problems = Vec::new();
    let mut clients = Vec::new();
    let mut connection_name = String::new();
    for call in calls["calls"].as_array().unwrap() {
        let name = call["name"].as_str().unwrap();
        if let Some(queue) = call["amqp_consumer_on"].as_str() {
            let publish = call["amqp_publish"].as_u64().unwrap_or(0);
            clients.push(consumer_on(&broker, queue, publish).await);
            if std::env::var(EXTERNAL_URL_ENV).is_ok() {
                // The reference's management database sees it at its next stats emission.
                tokio::time::sleep(std::time::Duration::from_secs(6)).await;
            }
            continue;
        }
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
            .replace("{amqp_port}", &port.to_string())
            .replace("{connection}", &encode(&connection_name))
            .replace("{channel}", &encode(&format!("{connection_name} (1)")));
        let method = call["method"].as_str().unwrap();
        let answer = http.call(method, &path, user, password, body.as_deref());
        if path == "/api/connections"
            && let Some(first) = answer.body.get(0)
        {
            connection_name = first["name"].as_str().unwrap_or_default().to_string();
        }
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
            let not_kept: Vec<&str> = call["not_kept"]
                .as_array()
                .map(|keys| keys.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            shape_differences("", &rabbit_body, &answer.body, &not_kept, &mut differences);
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
