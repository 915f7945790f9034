//! Users, vhosts and permissions changed through the management API are the broker's own:
//! they work over AMQP at once, survive a restart, and a deleted vhost takes its connections
//! with it. Health checks and turning the API off. The tests that start with
//! `TestBroker::start` run against the reference RabbitMQ too (`WARREN_TEST_AMQP_URL`).

use serde_json::json;

use crate::common::http::Http;
use crate::common::*;
use crate::tenancy::in_process::CloseWatch;
use crate::tenancy::support::{Node, channel_as, try_connect_as};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_vhost_and_permissions_made_through_the_api_work_over_amqp_and_survive_a_restart() {
    let mut node = Node::new();
    node.boot("");
    let http = Http::new(&node.broker().management_url());
    assert_eq!(
        http.put("/api/vhosts/mv", &json!({"description": "made over http"}))
            .status,
        201
    );
    assert_eq!(
        http.put("/api/users/mu", &json!({"password": "mp", "tags": ""}))
            .status,
        201
    );
    let all = json!({"configure": ".*", "write": ".*", "read": ".*"});
    assert_eq!(http.put("/api/permissions/mv/mu", &all).status, 201);

    let (conn, ch) = channel_as(node.addr(), "mu", "mp", "mv").await;
    declare_tmp_queue(&ch).await;
    conn.close(200, "done".into()).await.unwrap();
    assert!(
        try_connect_as(node.addr(), "mu", "wrong", "mv")
            .await
            .is_err()
    );

    node.terminate();
    node.boot("");
    let http = Http::new(&node.broker().management_url());
    let shown = http.get("/api/vhosts/mv");
    assert_eq!(
        (shown.status, &shown.body["description"]),
        (200, &json!("made over http"))
    );
    // The creator (guest) got full permissions on the vhost it made, as on RabbitMQ.
    assert_eq!(http.get("/api/permissions/mv/guest").status, 200);
    let (conn, ch) = channel_as(node.addr(), "mu", "mp", "mv").await;
    declare_tmp_queue(&ch).await;
    conn.close(200, "done".into()).await.unwrap();

    // A password changed over HTTP is the one that logs in.
    assert_eq!(
        http.put("/api/users/mu", &json!({"password": "mp2", "tags": ""}))
            .status,
        204
    );
    assert!(try_connect_as(node.addr(), "mu", "mp", "mv").await.is_err());
    let (conn, _ch) = channel_as(node.addr(), "mu", "mp2", "mv").await;
    conn.close(200, "done".into()).await.unwrap();
}

/// warren only: RabbitMQ 3.10 resets these connections (TCP RST, no connection.close) when the
/// vhost goes through its HTTP API; warren closes them as the tenancy issue decided.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_vhost_through_the_api_closes_its_connections_with_320() {
    let broker = TestBroker::spawn(&[]);
    let http = Http::new(&broker.management_url());
    assert_eq!(http.put("/api/vhosts/doomed", &json!({})).status, 201);
    let (conn, _ch) = channel_as(broker.addr(), "guest", "guest", "doomed").await;
    let watch = CloseWatch::new(&conn);
    assert_eq!(http.delete("/api/vhosts/doomed").status, 204);
    assert_eq!(
        watch.reason().await,
        (
            320,
            "CONNECTION_FORCED - vhost 'doomed' is deleted".to_string()
        )
    );
    assert_eq!(http.get("/api/vhosts/doomed").status, 404);
}

#[test]
fn the_alarm_health_checks_fail_with_503_while_the_memory_alarm_is_up() {
    let broker = TestBroker::spawn_with_config("memory_limit_bytes = 1\n");
    let http = Http::new(&broker.management_url());
    for (path, reason) in [
        (
            "/api/health/checks/alarms",
            "resource alarm(s) in effect in the cluster",
        ),
        (
            "/api/health/checks/local-alarms",
            "resource alarm(s) in effect on the node",
        ),
    ] {
        let answer = http.get(path);
        assert_eq!(answer.status, 503, "{path}: {:?}", answer.body);
        assert_eq!(answer.body["status"], "failed");
        assert_eq!(answer.body["reason"], reason);
        assert_eq!(answer.body["alarms"][0]["resource"], "memory");
    }
}

#[test]
fn a_management_user_sees_only_its_vhosts_and_may_not_administer() {
    let broker = TestBroker::start();
    let http = Http::new(&broker.management_url());
    for vhost in ["seen", "unseen"] {
        assert_eq!(
            http.put(&format!("/api/vhosts/{vhost}"), &json!({})).status,
            201
        );
    }
    assert_eq!(
        http.put(
            "/api/users/watcher",
            &json!({"password": "w", "tags": "management"})
        )
        .status,
        201
    );
    let all = json!({"configure": ".*", "write": ".*", "read": ".*"});
    assert_eq!(http.put("/api/permissions/seen/watcher", &all).status, 201);

    let vhosts = http.call("GET", "/api/vhosts", "watcher", "w", None);
    let names: Vec<_> = vhosts
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("seen")]);
    let refused = http.call("DELETE", "/api/vhosts/seen", "watcher", "w", None);
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.body,
        json!({"error": "not_authorised", "reason": "Not administrator user"})
    );
    assert_eq!(
        http.get("/api/vhosts/seen").status,
        200,
        "the refused delete deleted nothing"
    );
    for vhost in ["seen", "unseen"] {
        http.delete(&format!("/api/vhosts/{vhost}"));
    }
    http.delete("/api/users/watcher");
}

#[test]
fn no_management_turns_the_api_off() {
    let broker = TestBroker::spawn(&["--no-management"]);
    assert!(!broker.has_management());
}
