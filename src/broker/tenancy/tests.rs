use super::*;
use crate::auth::{Auth, HashingAlgorithm, PasswordHash};

fn broker() -> Broker {
    Broker::new(
        Auth::with_default_user("guest", "guest", "/"),
        1 << 20,
        1000,
    )
}

#[test]
fn vhosts_are_separate_namespaces_with_their_own_standard_exchanges() {
    let broker = broker();
    let staging = broker
        .put_vhost("staging", VhostSettings::default())
        .unwrap();
    assert!(staging.exchange("amq.topic").is_some());
    let root = broker.vhost("/").unwrap();
    assert!(!Arc::ptr_eq(
        &staging.exchange("amq.topic").unwrap(),
        &root.exchange("amq.topic").unwrap()
    ));
    broker.delete_vhost("staging").unwrap();
    assert!(broker.vhost("staging").is_none());
    assert_eq!(
        broker.delete_vhost("staging"),
        Err(TenancyError::NotFound("vhost 'staging' not found".into()))
    );
}

#[test]
fn permissions_need_an_existing_user_and_vhost_and_a_valid_expression() {
    let broker = broker();
    let hash = PasswordHash::new(HashingAlgorithm::Sha256, "pw");
    broker
        .put_user(User::new("app", Some(hash), &["management"]))
        .unwrap();
    assert!(matches!(
        broker.set_permissions("app", "nope", ".*", ".*", ".*"),
        Err(TenancyError::NotFound(_))
    ));
    assert!(matches!(
        broker.set_permissions("app", "/", "(", ".*", ".*"),
        Err(TenancyError::Invalid(_))
    ));
    broker
        .set_permissions("app", "/", "^app", ".*", ".*")
        .unwrap();
    assert!(broker.auth.check_vhost_access("app", "/").is_ok());
    broker.delete_user("app").unwrap();
    assert!(broker.auth.check_vhost_access("app", "/").is_err());
}

#[test]
fn a_deleted_vhost_takes_no_more_declares_from_connections_still_closing() {
    use crate::broker::queue::QueueDeclaration;
    let broker = broker();
    let staging = broker
        .put_vhost("staging", VhostSettings::default())
        .unwrap();
    broker.delete_vhost("staging").unwrap();
    let declaration = QueueDeclaration {
        durable: true,
        exclusive_owner: None,
        auto_delete: false,
        arguments: Default::default(),
    };
    let refused = staging
        .declare_queue("late", declaration, false, 1)
        .err()
        .unwrap();
    assert_eq!(
        (refused.code, refused.text.as_str()),
        (320, "CONNECTION_FORCED - vhost 'staging' is deleted")
    );
    assert!(staging.queue("late").is_none());
}
