use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::auth::Auth;

const REMOTE: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));

fn broker() -> Broker {
    Broker::new(
        Auth::with_default_user("guest", "guest", "/"),
        1 << 20,
        1000,
    )
}

/// The shape `rabbitmqctl export_definitions` writes (3.10), trimmed.
const EXPORT: &str = r#"{
  "rabbit_version": "3.10.8",
  "users": [
    {"name": "orders", "password_hash": "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR",
     "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["monitoring"],
     "limits": {"max-connections": 5}},
    {"name": "legacy", "password_hash": "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR",
     "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": "administrator,impersonator",
     "limits": {}},
    {"name": "plain", "password": "s3cret", "tags": []}
  ],
  "vhosts": [{"name": "staging", "description": "the staging apps", "tags": ["a"]}],
  "permissions": [
    {"user": "orders", "vhost": "staging", "configure": "^orders\\.", "write": ".*", "read": ".*"}
  ],
  "topic_permissions": [
    {"user": "orders", "vhost": "staging", "exchange": "amq.topic", "write": "^orders\\.", "read": ".*"}
  ],
  "parameters": [
    {"value": {"max-connections": 10, "max-queues": 2}, "vhost": "staging",
     "component": "vhost-limits", "name": "limits"}
  ],
  "global_parameters": [{"name": "cluster_name", "value": "rabbit@x"}],
  "policies": [
    {"vhost": "staging", "name": "cap", "pattern": "^orders\\.", "apply-to": "queues",
     "definition": {"max-length": 100, "overflow": "reject-publish"}, "priority": 1}
  ],
  "queues": [
    {"name": "orders.new", "vhost": "staging", "durable": true, "auto_delete": false,
     "arguments": {"x-max-length": 1000, "x-queue-type": "classic"}}
  ],
  "exchanges": [
    {"name": "orders", "vhost": "staging", "type": "topic", "durable": true,
     "auto_delete": false, "internal": false, "arguments": {}}
  ],
  "bindings": [
    {"source": "orders", "vhost": "staging", "destination": "orders.new",
     "destination_type": "queue", "routing_key": "new.#", "arguments": {}}
  ]
}"#;

#[test]
fn a_rabbitmq_export_imports_users_vhosts_permissions_and_topology() {
    let broker = broker();
    let imported = import_json(&broker, EXPORT).unwrap();
    assert_eq!(
        imported,
        Imported {
            users: 3,
            vhosts: 1,
            permissions: 1,
            policies: 1,
            exchanges: 1,
            queues: 1,
            bindings: 1
        }
    );
    let queue = broker
        .vhost("staging")
        .unwrap()
        .queue("orders.new")
        .unwrap();
    assert_eq!(queue.applied_policies().policy_name(), Some("cap"));
    assert_eq!(queue.settings().max_length, Some(100));
    let auth = &broker.auth;
    let orders = auth
        .authenticate("PLAIN", b"\0orders\0test12", REMOTE)
        .unwrap();
    assert_eq!(orders.tags, ["monitoring"]);
    assert_eq!(orders.limits.max_connections, Some(5));
    let legacy = auth.user("legacy").unwrap();
    assert!(legacy.is_impersonator());
    assert!(
        auth.authenticate("PLAIN", b"\0plain\0s3cret", REMOTE)
            .is_ok()
    );
    assert!(auth.check_vhost_access("orders", "staging").is_ok());
    assert!(auth.check_vhost_access("orders", "/").is_err());
    assert!(
        auth.check_topic(
            "orders",
            "staging",
            "amq.topic",
            "billing.x",
            crate::auth::Access::Write
        )
        .is_err()
    );
    let staging = broker.vhost("staging").unwrap();
    let settings = staging.settings();
    assert_eq!(settings.description, "the staging apps");
    assert_eq!(settings.limits.max_queues, Some(2));
    assert_eq!(settings.limits.max_connections, Some(10));
    assert!(staging.queue("orders.new").is_some());
    assert!(staging.exchange("orders").unwrap().has_bindings());
    // Importing again changes nothing and refuses nothing.
    assert!(import_json(&broker, EXPORT).is_ok());
}

#[test]
fn bad_definitions_say_what_is_wrong() {
    let broker = broker();
    let err = import_json(&broker, "{").unwrap_err();
    assert!(err.starts_with("not valid definitions JSON"), "{err}");
    let err = import_json(
        &broker,
        r#"{"permissions": [{"user": "nobody", "vhost": "/", "configure": "", "write": "", "read": ""}]}"#,
    )
    .unwrap_err();
    assert_eq!(
        err,
        "permissions of 'nobody' on '/': user 'nobody' not found"
    );
    let err = import_json(
        &broker,
        r#"{"users": [{"name": "x", "password_hash": "AAAA", "hashing_algorithm": "rabbit_password_hashing_md5"}]}"#,
    )
    .unwrap_err();
    assert!(err.contains("unsupported hashing_algorithm"), "{err}");
}

#[test]
fn deeply_nested_arguments_are_cut_off_not_recursed_into() {
    let mut nested = String::new();
    for _ in 0..100 {
        nested.push_str("{\"a\":");
    }
    nested.push('1');
    for _ in 0..100 {
        nested.push('}');
    }
    let v: serde_json::Value = serde_json::from_str(&nested).unwrap();
    let serde_json::Value::Object(map) = v else {
        unreachable!()
    };
    let _ = table(&map);
}

/// A real `rabbitmqctl export_definitions` from RabbitMQ 3.10.8 (users made with
/// `rabbitmqctl add_user`, one while `password_hashing_module` was SHA-512): its users log in
/// here with their passwords, and its limits and permissions hold.
#[test]
fn a_real_rabbitmq_3_10_export_logs_its_users_in_unchanged() {
    let broker = broker();
    let export = include_str!("rabbitmq-3.10.8-export.json");
    import_json(&broker, export).unwrap();
    let auth = &broker.auth;
    let orders = auth
        .authenticate("PLAIN", b"\0orders\0Ord3rs!", REMOTE)
        .unwrap();
    assert_eq!(orders.limits.max_channels, Some(4));
    let billing = auth
        .authenticate("PLAIN", b"\0billing\0B1ll!ng", REMOTE)
        .unwrap();
    assert_eq!(
        billing.password.as_ref().unwrap().algorithm(),
        HashingAlgorithm::Sha512
    );
    assert!(
        auth.authenticate("PLAIN", b"\0billing\0wrong", REMOTE)
            .is_err()
    );
    let limits = broker.vhost("staging").unwrap().limits();
    assert_eq!(
        (limits.max_connections, limits.max_queues),
        (Some(7), Some(3))
    );
    assert_eq!(
        broker.vhost("/").unwrap().settings().description,
        "Default virtual host"
    );
    assert!(auth.check_vhost_access("orders", "/").is_err());
}
