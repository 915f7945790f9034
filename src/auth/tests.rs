use std::net::{IpAddr, Ipv4Addr};

use super::*;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const REMOTE: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

fn name(r: Result<std::sync::Arc<User>, AuthError>) -> Result<String, AuthError> {
    r.map(|u| u.name.clone())
}

#[test]
fn guest_logs_in_with_plain_from_loopback_only() {
    let auth = Auth::with_default_user("guest", "guest", "/");
    assert_eq!(
        name(auth.authenticate("PLAIN", b"\0guest\0guest", LOOPBACK)),
        Ok("guest".into())
    );
    assert_eq!(
        name(auth.authenticate("PLAIN", b"\0guest\0wrong", LOOPBACK)),
        Err(AuthError::BadCredentials("guest".into()))
    );
    assert_eq!(
        name(auth.authenticate("PLAIN", b"\0guest\0guest", REMOTE)),
        Err(AuthError::LoopbackOnly("guest".into()))
    );
    let mapped = IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped());
    assert!(
        auth.authenticate("PLAIN", b"\0guest\0guest", mapped)
            .is_ok()
    );
}

#[test]
fn users_without_a_password_log_in_only_with_external() {
    let auth = Auth::new(vec![]);
    auth.put_user(User::new("CN=app", None, &[]));
    assert!(auth.authenticate("PLAIN", b"\0CN=app\0", REMOTE).is_err());
    assert!(auth.authenticate("PLAIN", b"\0CN=app\0x", REMOTE).is_err());
    assert_eq!(
        name(auth.authenticate_external("CN=app", REMOTE)),
        Ok("CN=app".into())
    );
    assert!(auth.authenticate_external("CN=other", REMOTE).is_err());
}

#[test]
fn sha512_users_from_a_definitions_export_log_in() {
    let auth = Auth::new(vec![]);
    let hash = PasswordHash::new(HashingAlgorithm::Sha512, "pw");
    let exported = hash.to_base64();
    let imported = PasswordHash::from_base64(HashingAlgorithm::Sha512, &exported).unwrap();
    auth.put_user(User::new("svc", Some(imported), &["monitoring"]));
    assert!(auth.authenticate("PLAIN", b"\0svc\0pw", REMOTE).is_ok());
    assert!(auth.authenticate("PLAIN", b"\0svc\0pw2", REMOTE).is_err());
}

#[test]
fn resource_checks_refuse_with_rabbitmqs_texts() {
    let auth = Auth::new(vec![]);
    auth.put_user(User::new("u", None, &[]));
    assert_eq!(
        auth.check_vhost_access("u", "v").unwrap_err().text,
        "NOT_ALLOWED - access to vhost 'v' refused for user 'u'"
    );
    auth.set_permissions("u", "v", Permissions::new("^mine", "", ".*").unwrap());
    assert!(auth.check_vhost_access("u", "v").is_ok());
    let check = |kind, name: &str, access| auth.check_resource("u", "v", kind, name, access);
    assert!(check(ResourceKind::Queue, "mine.q", Access::Configure).is_ok());
    let e = check(ResourceKind::Queue, "theirs", Access::Configure).unwrap_err();
    assert_eq!(e.code, 403);
    assert_eq!(
        e.text,
        "ACCESS_REFUSED - access to queue 'theirs' in vhost 'v' refused for user 'u'"
    );
    assert_eq!(
        check(ResourceKind::Exchange, "", Access::Write)
            .unwrap_err()
            .text,
        "ACCESS_REFUSED - access to exchange 'amq.default' in vhost 'v' refused for user 'u'"
    );
    assert!(check(ResourceKind::Exchange, "", Access::Read).is_ok());
}

#[test]
fn topic_permissions_restrict_only_the_exchanges_they_name() {
    let auth = Auth::new(vec![]);
    auth.put_user(User::new("u", None, &[]));
    auth.set_permissions("u", "v", Permissions::all());
    assert!(!auth.has_topic_permissions("u", "v"));
    assert!(
        auth.check_topic("u", "v", "amq.topic", "a.b", Access::Write)
            .is_ok()
    );
    auth.set_topic_permission(
        "u",
        "v",
        TopicPermission::new("amq.topic", "^a\\.", "^r\\.").unwrap(),
    );
    assert!(auth.has_topic_permissions("u", "v"));
    assert!(
        auth.check_topic("u", "v", "amq.topic", "a.b", Access::Write)
            .is_ok()
    );
    assert_eq!(
        auth.check_topic("u", "v", "amq.topic", "b.b", Access::Write)
            .unwrap_err()
            .text,
        "ACCESS_REFUSED - access to topic 'b.b' in exchange 'amq.topic' in vhost 'v' refused for user 'u'"
    );
    assert!(
        auth.check_topic("u", "v", "amq.topic", "r.x", Access::Read)
            .is_ok()
    );
    assert!(
        auth.check_topic("u", "v", "other", "b.b", Access::Write)
            .is_ok()
    );
}

#[test]
fn deleting_a_user_or_vhost_drops_their_permissions_and_moves_the_generation() {
    let auth = Auth::new(vec![]);
    auth.put_user(User::new("u", None, &[]));
    auth.set_permissions("u", "v", Permissions::all());
    auth.set_permissions("u", "w", Permissions::all());
    let g = auth.generation();
    auth.forget_vhost("v");
    assert!(auth.generation() > g);
    assert!(auth.permissions("u", "v").is_none());
    assert!(auth.permissions("u", "w").is_some());
    assert!(auth.delete_user("u"));
    assert!(auth.permissions("u", "w").is_none());
    assert!(!auth.delete_user("u"));
}
