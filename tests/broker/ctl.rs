//! `warren ctl`: rabbitmqctl's verbs against a running warren, through its management API,
//! with rabbitmqctl's output (a header line, tab-separated rows) or JSON.

use std::process::{Command, Output};

use serde_json::Value;

use crate::common::*;

fn ctl(broker: &TestBroker, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(["ctl", "--url", &broker.management_url()])
        .args(args)
        .output()
        .expect("run warren ctl")
}

/// stdout of a verb that must succeed.
fn ok(broker: &TestBroker, args: &[&str]) -> String {
    let out = ctl(broker, args);
    assert!(
        out.status.success(),
        "warren ctl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn verbs_change_the_broker_and_list_it_as_rabbitmqctl_does() {
    let broker = TestBroker::spawn(&[]);
    ok(&broker, &["add_vhost", "ctl-v"]);
    ok(&broker, &["add_user", "ctl-u", "pw"]);
    ok(
        &broker,
        &["set_user_tags", "ctl-u", "management", "monitoring"],
    );
    ok(
        &broker,
        &["set_permissions", "-p", "ctl-v", "ctl-u", "^c", ".*", "^r"],
    );

    let vhosts = ok(&broker, &["list_vhosts"]);
    assert!(vhosts.lines().any(|l| l == "ctl-v"), "{vhosts}");
    let users = ok(&broker, &["list_users"]);
    assert!(
        users
            .lines()
            .any(|l| l == "ctl-u\t[management, monitoring]"),
        "{users}"
    );
    let perms = ok(&broker, &["list_permissions", "-p", "ctl-v"]);
    let lines: Vec<&str> = perms.lines().collect();
    assert!(lines.contains(&"user\tconfigure\twrite\tread"), "{perms}");
    assert!(lines.contains(&"ctl-u\t^c\t.*\t^r"), "{perms}");

    // JSON output: the columns asked for, nothing else.
    let json = ok(
        &broker,
        &[
            "--formatter",
            "json",
            "list_exchanges",
            "-p",
            "ctl-v",
            "name",
            "type",
        ],
    );
    let exchanges: Value = serde_json::from_str(&json).expect("JSON output");
    let topic = exchanges
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "amq.topic")
        .expect("amq.topic listed");
    assert_eq!(
        topic,
        &serde_json::json!({"name": "amq.topic", "type": "topic"})
    );

    let exported = ok(&broker, &["export_definitions", "-"]);
    let definitions: Value = serde_json::from_str(&exported).expect("definitions JSON");
    assert!(
        definitions["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["name"] == "ctl-u")
    );

    ok(&broker, &["clear_permissions", "-p", "ctl-v", "ctl-u"]);
    ok(&broker, &["delete_user", "ctl-u"]);
    ok(&broker, &["delete_vhost", "ctl-v"]);
    assert!(!ok(&broker, &["list_vhosts"]).lines().any(|l| l == "ctl-v"));

    // A definitions file imports back what it holds.
    let file = std::env::temp_dir()
        .join(unique("ctl-defs"))
        .with_extension("json");
    std::fs::write(&file, exported).unwrap();
    ok(&broker, &["import_definitions", file.to_str().unwrap()]);
    assert!(ok(&broker, &["list_vhosts"]).lines().any(|l| l == "ctl-v"));
    let _ = std::fs::remove_file(file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_are_listed_purged_and_deleted() {
    let broker = TestBroker::spawn(&[]);
    let (_conn, ch) = broker.channel().await;
    // Not exclusive: purge and delete come from another client (ctl), as over AMQP.
    let queue = unique("ctl-q");
    declare_queue(&ch, &queue).await;
    publish_n(&ch, &queue, 3).await;
    wait_message_count(&ch, &queue, 3).await;
    let listed = ok(&broker, &["list_queues", "name", "messages"]);
    assert!(
        listed.lines().any(|l| l == format!("{queue}\t3")),
        "{listed}"
    );
    ok(&broker, &["purge_queue", &queue]);
    wait_message_count(&ch, &queue, 0).await;
    ok(&broker, &["delete_queue", &queue]);
    let listed = ok(&broker, &["list_queues"]);
    assert!(!listed.contains(&queue), "{listed}");
}

#[test]
fn a_failing_verb_says_why_and_exits_non_zero() {
    let broker = TestBroker::spawn(&[]);
    let out = ctl(&broker, &["delete_user", "nobody"]);
    assert_eq!(out.status.code(), Some(70));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    let out = ctl(&broker, &["add_user", "guest", "x"]);
    assert_eq!(out.status.code(), Some(70));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}

#[test]
fn policies_are_set_listed_and_cleared_as_rabbitmqctl_does() {
    let broker = TestBroker::spawn(&[]);
    let set = ok(
        &broker,
        &[
            "set_policy",
            "--priority",
            "3",
            "--apply-to",
            "queues",
            "cap",
            "^cap",
            r#"{"max-length":3}"#,
        ],
    );
    assert_eq!(
        set,
        "Setting policy \"cap\" for pattern \"^cap\" to \"{\"max-length\":3}\" with priority \"3\" for vhost \"/\" ...\n"
    );
    ok(
        &broker,
        &[
            "set_operator_policy",
            "-p",
            "/",
            "op",
            "^cap",
            r#"{"max-length":1}"#,
        ],
    );
    assert_eq!(
        ok(&broker, &["list_policies"]),
        "Listing policies for vhost \"/\" ...\nvhost\tname\tpattern\tapply-to\tdefinition\tpriority\n/\tcap\t^cap\tqueues\t{\"max-length\":3}\t3\n"
    );
    let listed: Value = serde_json::from_str(&ok(
        &broker,
        &["list_operator_policies", "--formatter", "json"],
    ))
    .unwrap();
    assert_eq!(listed[0]["name"], "op");
    assert_eq!(listed[0]["definition"], r#"{"max-length":1}"#);

    let refused = ctl(&broker, &["set_policy", "bad", ".*", r#"{"foo":3}"#]);
    assert_eq!(refused.status.code(), Some(70));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains(r#"[{<<"foo">>,3}] are not recognised policy settings"#),
        "{said}"
    );
    ok(&broker, &["clear_policy", "cap"]);
    ok(&broker, &["clear_operator_policy", "op"]);
    let missing = ctl(&broker, &["clear_policy", "cap"]);
    assert_eq!(missing.status.code(), Some(70));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("Parameter does not exist"));
}
