//! Policies and operator policies set through the management API act on queues and exchanges
//! as RabbitMQ's do: on queues that already exist and on those declared later, with the lower
//! limit winning between argument, policy and operator policy, a policy's dead-letter and
//! alternate exchanges taking effect, RabbitMQ's refusals and access rules, and (warren only)
//! surviving a restart. The tests that start with `TestBroker::start` run against the
//! reference RabbitMQ too (`WARREN_TEST_AMQP_URL`); each uses names of its own and removes its
//! policies, since that broker is shared.

use std::time::{Duration, Instant};

use amq_protocol::types::{AMQPValue, FieldTable};
use lapin::options::{BasicGetOptions, QueueBindOptions};
use serde_json::{Value, json};

use crate::common::http::{Answer, Http};
use crate::common::*;
use crate::tenancy::support::Node;

async fn publish_n(ch: &lapin::Channel, queue: &str, n: usize) {
    for i in 0..n {
        publish_confirmed(ch, "", queue, format!("m{i}").as_bytes(), transient()).await;
    }
}

/// Waits until `path` shows `fields` (RabbitMQ's API shows a queue's policy from statistics
/// it collects every 5 s).
fn wait_for_fields(http: &Http, path: &str, fields: &[(&str, Value)]) {
    let deadline = Instant::now() + Duration::from_secs(12);
    loop {
        let shown = http.get(path).body;
        if fields.iter().all(|(k, v)| &shown[*k] == v) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} shows {shown}, expected {fields:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn put_policy(http: &Http, kind: &str, name: &str, body: Value) -> Answer {
    http.put(&format!("/api/{kind}/%2F/{name}"), &body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_limits_existing_and_new_queues_and_the_lower_limit_always_wins() {
    let broker = TestBroker::start();
    let http = Http::new(&broker.management_url());
    let (_conn, ch) = broker.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    let prefix = unique("pol-len");
    let (plain, own_limit) = (format!("{prefix}.plain"), format!("{prefix}.own"));
    declare_queue(&ch, &plain).await;
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongInt(2));
    declare_queue_with(&ch, &own_limit, args).await;
    publish_n(&ch, &plain, 10).await;

    let (policy, operator) = (unique("pol"), unique("op"));
    let body = json!({"pattern": format!("^{prefix}\\."), "definition": {"max-length": 3},
                      "apply-to": "queues"});
    assert_eq!(put_policy(&http, "policies", &policy, body).status, 201);
    // An existing queue drops its oldest messages down to the new limit at once.
    wait_message_count(&ch, &plain, 3).await;
    publish_n(&ch, &plain, 5).await;
    assert_eq!(message_count(&ch, &plain).await, 3);
    // The queue's own x-max-length 2 is lower than the policy's 3: it stays.
    publish_n(&ch, &own_limit, 5).await;
    assert_eq!(message_count(&ch, &own_limit).await, 2);
    // A queue declared after the policy gets it too.
    let later = format!("{prefix}.later");
    declare_queue(&ch, &later).await;
    publish_n(&ch, &later, 5).await;
    assert_eq!(message_count(&ch, &later).await, 3);

    // An operator policy's lower limit wins over the policy's.
    let body = json!({"pattern": format!("^{prefix}\\.plain$"), "definition": {"max-length": 1}});
    assert_eq!(
        put_policy(&http, "operator-policies", &operator, body).status,
        201
    );
    wait_message_count(&ch, &plain, 1).await;
    let path = format!("/api/queues/%2F/{plain}");
    wait_for_fields(
        &http,
        &path,
        &[
            ("policy", json!(policy)),
            ("operator_policy", json!(operator)),
            ("effective_policy_definition", json!({"max-length": 1})),
        ],
    );

    // Without either policy the queue has no limit again.
    assert_eq!(
        http.delete(&format!("/api/operator-policies/%2F/{operator}"))
            .status,
        204
    );
    assert_eq!(
        http.delete(&format!("/api/policies/%2F/{policy}")).status,
        204
    );
    let deadline = Instant::now() + WAIT;
    loop {
        publish_n(&ch, &plain, 1).await;
        if message_count(&ch, &plain).await >= 4 {
            break;
        }
        assert!(Instant::now() < deadline, "{plain} still limited");
    }
    wait_for_fields(
        &http,
        &path,
        &[
            ("policy", Value::Null),
            ("effective_policy_definition", json!({})),
        ],
    );
    for q in [&plain, &own_limit, &later] {
        ch.queue_delete(q.as_str().into(), Default::default())
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policys_dead_letter_exchange_and_ttl_apply_to_a_queue_declared_without_them() {
    let broker = TestBroker::start();
    let http = Http::new(&broker.management_url());
    let (_conn, ch) = broker.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    let prefix = unique("pol-dlx");
    let (source, dead) = (format!("{prefix}.source"), format!("{prefix}-dead"));
    declare_queue(&ch, &source).await;
    declare_queue(&ch, &dead).await;
    let policy = unique("pol");
    let body = json!({"pattern": format!("^{prefix}\\.source$"), "apply-to": "queues",
        "definition": {"message-ttl": 50, "dead-letter-exchange": "",
                       "dead-letter-routing-key": dead}});
    assert_eq!(put_policy(&http, "policies", &policy, body).status, 201);
    // Give RabbitMQ's queue process the policy before publishing (it applies asynchronously).
    tokio::time::sleep(Duration::from_millis(300)).await;
    publish_n(&ch, &source, 3).await;
    wait_message_count(&ch, &dead, 3).await;
    assert_eq!(message_count(&ch, &source).await, 0);
    let got = ch
        .basic_get(dead.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("a dead-lettered message");
    let death = got
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-first-death-reason").cloned());
    assert_eq!(death, Some(AMQPValue::LongString("expired".into())));
    assert_eq!(
        http.delete(&format!("/api/policies/%2F/{policy}")).status,
        204
    );
    for q in [&source, &dead] {
        ch.queue_delete(q.as_str().into(), Default::default())
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policys_alternate_exchange_takes_what_an_exchange_cannot_route() {
    let broker = TestBroker::start();
    let http = Http::new(&broker.management_url());
    let (_conn, ch) = broker.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    let prefix = unique("pol-ae");
    let (exchange, alternate, caught) = (
        format!("{prefix}.x"),
        format!("{prefix}-ae"),
        format!("{prefix}-caught"),
    );
    declare_exchange(&ch, &exchange, lapin::ExchangeKind::Direct).await;
    declare_exchange(&ch, &alternate, lapin::ExchangeKind::Fanout).await;
    declare_queue(&ch, &caught).await;
    ch.queue_bind(
        caught.as_str().into(),
        alternate.as_str().into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let policy = unique("pol");
    let body = json!({"pattern": format!("^{prefix}\\.x$"), "apply-to": "exchanges",
                      "definition": {"alternate-exchange": alternate}});
    assert_eq!(put_policy(&http, "policies", &policy, body).status, 201);
    let shown = http.get(&format!("/api/exchanges/%2F/{exchange}"));
    assert_eq!(shown.body["policy"], json!(policy));
    publish_confirmed(&ch, &exchange, "nowhere", b"lost?", transient()).await;
    wait_message_count(&ch, &caught, 1).await;
    assert_eq!(
        http.delete(&format!("/api/policies/%2F/{policy}")).status,
        204
    );
    assert!(
        http.get(&format!("/api/exchanges/%2F/{exchange}"))
            .body
            .get("policy")
            .is_none()
    );
    publish_confirmed(&ch, &exchange, "nowhere", b"lost", transient()).await;
    assert_eq!(message_count(&ch, &caught).await, 1);
    ch.queue_delete(caught.as_str().into(), Default::default())
        .await
        .unwrap();
    for x in [&exchange, &alternate] {
        ch.exchange_delete(x.as_str().into(), Default::default())
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_policies_get_rabbitmqs_status_and_reason() {
    let broker = TestBroker::start();
    let http = Http::new(&broker.management_url());
    let name = unique("pol-bad");
    let cases = [
        (
            "policies",
            json!({"pattern": ".*", "definition": {"max-length": -1}}),
            "Validation failed\n\n-1 is not a valid maximum length\n",
        ),
        (
            "policies",
            json!({"pattern": ".*", "definition": {"overflow": "bad"}}),
            "Validation failed\n\n&lt;&lt;\"bad\"&gt;&gt; is not a valid overflow value\n",
        ),
        (
            "policies",
            json!({"pattern": ".*", "definition": {"foo": "bar"}}),
            "Validation failed\n\n[{&lt;&lt;\"foo\"&gt;&gt;,&lt;&lt;\"bar\"&gt;&gt;}] are not recognised policy settings\n",
        ),
        (
            "policies",
            json!({"definition": {"max-length": 1}}),
            "[{key_missing,pattern}]",
        ),
        (
            "policies",
            json!({"pattern": ".*", "definition": {}}),
            "Validation failed\n\nno policy provided\n",
        ),
        (
            "policies",
            json!({"pattern": ".*", "definition": {"max-length": 1}, "apply-to": "bad"}),
            "Validation failed\n\napply-to 'bad' unrecognised; should be 'queues', 'exchanges' or 'all'\n",
        ),
        (
            "operator-policies",
            json!({"pattern": ".*", "definition": {"dead-letter-exchange": "x"}}),
            "Validation failed\n\n[{<<\"dead-letter-exchange\">>,<<\"x\">>}] are not recognised policy settings\n",
        ),
    ];
    for (kind, body, reason) in cases {
        let answer = put_policy(&http, kind, &name, body.clone());
        assert_eq!(
            (answer.status, &answer.body),
            (400, &json!({"error": "bad_request", "reason": reason})),
            "{kind} {body}"
        );
    }
    let missing = http.put(
        &format!("/api/policies/{}/{name}", unique("no-vhost")),
        &json!({"pattern": ".*", "definition": {"max-length": 1}}),
    );
    assert_eq!(
        (missing.status, &missing.body),
        (
            404,
            &json!({"error": "not_found", "reason": "vhost_not_found"})
        )
    );
    assert_eq!(http.get(&format!("/api/policies/%2F/{name}")).status, 404);
    assert_eq!(
        http.delete(&format!("/api/policies/%2F/{name}")).status,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policymakers_change_policies_and_only_administrators_operator_policies() {
    let broker = TestBroker::start();
    let http = Http::new(&broker.management_url());
    let all = json!({"configure": ".*", "write": ".*", "read": ".*"});
    let (manager, maker) = (unique("pol-mu"), unique("pol-pu"));
    for (user, tags) in [(&manager, "management"), (&maker, "policymaker")] {
        http.put(
            &format!("/api/users/{user}"),
            &json!({"password": "pw", "tags": tags}),
        );
        http.put(&format!("/api/permissions/%2F/{user}"), &all);
    }
    let (policy, operator) = (unique("pol"), unique("op"));
    let body = json!({"pattern": "^pol-access-nothing$", "definition": {"max-length": 1}});
    let as_user = |user: &str, method: &str, path: &str, body: Option<&Value>| {
        let body = body.map(Value::to_string);
        let answer = http.call(method, path, user, "pw", body.as_deref());
        (answer.status, answer.body["reason"].clone())
    };
    let refused = |reason: &str| (401, json!(reason));
    let path = format!("/api/policies/%2F/{policy}");
    let op_path = format!("/api/operator-policies/%2F/{operator}");
    assert_eq!(
        as_user(&manager, "PUT", &path, Some(&body)),
        refused("User not authorised to access object")
    );
    assert_eq!(as_user(&maker, "PUT", &path, Some(&body)).0, 201);
    assert_eq!(as_user(&maker, "GET", &path, None).0, 200);
    assert_eq!(
        as_user(&manager, "GET", &path, None),
        refused("User not authorised to access object")
    );
    // A management user lists the policies of its vhosts.
    let listed = http.call("GET", "/api/policies/%2F", &manager, "pw", None);
    assert!(
        listed
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == json!(policy)),
        "{listed:?}"
    );
    assert_eq!(
        as_user(&maker, "PUT", &op_path, Some(&body)),
        refused("Not administrator user")
    );
    assert_eq!(http.put(&op_path, &body).status, 201);
    assert_eq!(
        http.get(&op_path).body["definition"],
        json!({"max-length": 1})
    );
    assert_eq!(as_user(&maker, "DELETE", &path, None).0, 204);
    assert_eq!(http.delete(&op_path).status, 204);
    for user in [&manager, &maker] {
        http.delete(&format!("/api/users/{user}"));
    }
}

/// warren only: restarts the broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_survive_a_restart_and_apply_to_recovered_queues() {
    let mut node = Node::new();
    node.boot("");
    let http = Http::new(&node.broker().management_url());
    let body = json!({"pattern": "^capped", "definition": {"max-length": 2}, "priority": 1.5,
                      "apply-to": "queues"});
    assert_eq!(put_policy(&http, "policies", "cap", body).status, 201);
    let body = json!({"pattern": "^capped", "definition": {"max-length": 1}});
    assert_eq!(
        put_policy(&http, "operator-policies", "op-cap", body).status,
        201
    );
    assert_eq!(
        http.put("/api/queues/%2F/capped", &json!({"durable": true}))
            .status,
        201
    );
    node.terminate();
    node.boot("");
    let http = Http::new(&node.broker().management_url());
    let shown = http.get("/api/policies/%2F/cap");
    assert_eq!(
        shown.body,
        json!({"vhost": "/", "name": "cap", "pattern": "^capped", "apply-to": "queues",
               "definition": {"max-length": 2}, "priority": 1.5})
    );
    let queue = http.get("/api/queues/%2F/capped");
    assert_eq!(
        (&queue.body["policy"], &queue.body["operator_policy"]),
        (&json!("cap"), &json!("op-cap"))
    );
    let conn = lapin::Connection::connect(
        &format!("amqp://guest:guest@{}/%2f", node.addr()),
        Default::default(),
    )
    .await
    .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    publish_n(&ch, "capped", 4).await;
    assert_eq!(message_count(&ch, "capped").await, 1);
    // Exported with the definitions, as RabbitMQ exports them (operator policies are not).
    let exported = http.get("/api/definitions");
    assert_eq!(exported.body["policies"].as_array().map(Vec::len), Some(1));
    assert_eq!(exported.body["policies"][0]["name"], json!("cap"));
}
