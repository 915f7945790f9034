//! A publishing channel keeps using the exchange or queue a name refers to *now*: after that
//! exchange or queue is deleted (by another channel) and declared again, the next publish on
//! the same channel goes to the new one, and in between a publish to the deleted exchange is
//! a 404.

use crate::common::*;

#[tokio::test]
async fn default_exchange_publish_reaches_a_queue_declared_again_under_the_same_name() {
    let (broker, _conn, publisher) = broker_with_channel().await;
    let (_conn2, admin) = broker.channel().await;
    let q = unique("redeclared");
    declare_queue(&admin, &q).await;
    publish(&publisher, "", &q, b"first").await;
    sync(&publisher).await;
    assert_eq!(message_count(&admin, &q).await, 1);

    delete_queue(&admin, &q).await;
    publish(&publisher, "", &q, b"lost").await; // no queue: dropped
    sync(&publisher).await;
    declare_queue(&admin, &q).await;
    publish(&publisher, "", &q, b"second").await;
    sync(&publisher).await;
    assert_eq!(drain_bodies(&admin, &q).await, vec!["second".to_string()]);
}

#[tokio::test]
async fn publish_follows_an_exchange_declared_again_with_other_bindings() {
    let (broker, _conn, publisher) = broker_with_channel().await;
    let (_conn2, admin) = broker.channel().await;
    let x = unique("redeclared-x");
    let (q1, q2) = (unique("old-binding"), unique("new-binding"));
    declare_exchange(&admin, &x, lapin::ExchangeKind::Fanout).await;
    declare_queue(&admin, &q1).await;
    bind_queue(&admin, &q1, &x, "").await;
    publish(&publisher, &x, "", b"to-old").await;
    sync(&publisher).await;

    delete_exchange(&admin, &x).await;
    declare_exchange(&admin, &x, lapin::ExchangeKind::Fanout).await;
    declare_queue(&admin, &q2).await;
    bind_queue(&admin, &q2, &x, "").await;
    publish(&publisher, &x, "", b"to-new").await;
    sync(&publisher).await;
    assert_eq!(drain_bodies(&admin, &q1).await, vec!["to-old".to_string()]);
    assert_eq!(drain_bodies(&admin, &q2).await, vec!["to-new".to_string()]);

    // Deleted and not declared again: the publishing channel gets 404.
    delete_exchange(&admin, &x).await;
    // (Watched rather than met by a next call: lapin refuses a call on a channel it already
    // saw closing, so a round trip could race the close.)
    let watch = ChannelErrorWatch::new(&publisher).await;
    publish(&publisher, &x, "", b"nowhere").await;
    let (code, _) = watch.error().await;
    assert_eq!(code, 404);
}
