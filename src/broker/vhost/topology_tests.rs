//! The topology lock's contract: declares, deletes, binds and unbinds serialise on it (so their
//! store writes need no map lock), and publishing never waits for it.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use amq_protocol::types::FieldTable;

use super::VHost;
use crate::broker::exchange::{Binding, Destination, ExchangeKind, ExchangeOptions};
use crate::broker::message::LazyHeaders;
use crate::broker::queue::QueueDeclaration;

fn queue_options() -> QueueDeclaration {
    QueueDeclaration {
        durable: false,
        exclusive_owner: None,
        auto_delete: false,
        arguments: FieldTable::default(),
    }
}

/// A vhost with direct exchange `x` bound to queue `q` by key `k`.
fn bound_vhost() -> Arc<VHost> {
    let vhost = VHost::new(
        "/",
        None,
        Default::default(),
        Default::default(),
        Default::default(),
        Default::default(),
    );
    let options = ExchangeOptions {
        kind: ExchangeKind::Direct,
        durable: false,
        auto_delete: false,
        internal: false,
        arguments: FieldTable::default(),
    };
    vhost.declare_exchange("x", options, false).unwrap();
    vhost.declare_queue("q", queue_options(), false, 1).unwrap();
    let binding = Binding {
        destination: Destination::Queue(Arc::from("q")),
        routing_key: "k".into(),
        arguments: FieldTable::default(),
    };
    vhost.bind("x", binding, 1).unwrap();
    vhost
}

/// Runs `f` on another thread; its result, or `None` if it did not finish within `limit`.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

#[test]
fn routing_does_not_wait_for_a_topology_change_in_progress() {
    let vhost = bound_vhost();
    // As a durable declare holds it while its definition is committed.
    let _declaring = vhost.topology.lock();
    let routed = within(Duration::from_secs(10), {
        let vhost = vhost.clone();
        move || {
            let exchange = vhost.exchange("x").unwrap();
            let properties = Default::default();
            let (mut out, mut scratch) =
                (Vec::new(), crate::broker::vhost::RouteScratch::default());
            let mut headers = LazyHeaders::new(&properties);
            vhost.route(&exchange, "k", &mut headers, &mut out, &mut scratch);
            let default = vhost.exchange("").unwrap();
            let mut headers = LazyHeaders::new(&properties);
            vhost.route(&default, "q", &mut headers, &mut out, &mut scratch);
            out.iter().map(|q| q.name.to_string()).collect::<Vec<_>>()
        }
    });
    assert_eq!(routed, Some(vec!["q".to_string()]), "routed to q once");
}

#[test]
fn redeclaring_an_existing_queue_does_not_wait_for_a_topology_change() {
    let vhost = bound_vhost();
    let _declaring = vhost.topology.lock();
    let redeclared = within(Duration::from_secs(10), {
        let vhost = vhost.clone();
        move || vhost.declare_queue("q", queue_options(), false, 1).is_ok()
    });
    assert_eq!(redeclared, Some(true));
}

#[test]
fn topology_changes_wait_for_the_one_in_progress() {
    let vhost = bound_vhost();
    let declaring = vhost.topology.lock();
    let (tx, rx) = mpsc::channel();
    let changer = std::thread::spawn({
        let vhost = vhost.clone();
        move || {
            vhost
                .declare_queue("q2", queue_options(), false, 1)
                .unwrap();
            tx.send("declared").unwrap();
            vhost.delete_queue("q", false, false, 1).unwrap();
            tx.send("deleted").unwrap();
        }
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "a new queue appears only after the change in progress"
    );
    assert!(vhost.queue("q2").is_none());
    drop(declaring);
    changer.join().unwrap();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), ["declared", "deleted"]);
    assert!(vhost.queue("q2").is_some() && vhost.queue("q").is_none());
    assert!(
        !vhost.exchange("x").unwrap().has_bindings(),
        "deleting q unbound it"
    );
}
