//! A publishing channel keeps using the exchange or queue a name refers to *now*: after that
//! exchange or queue is deleted (by another channel) and declared again, the next publish on
//! the same channel goes to the new one, and in between a publish to the deleted exchange is
//! a 404.

use amq_protocol::types::FieldTable;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions};

use crate::common::*;

#[tokio::test]
async fn default_exchange_publish_reaches_a_queue_declared_again_under_the_same_name() {
    let broker = TestBroker::start();
    let (_conn, publisher) = broker.channel().await;
    let (_conn2, admin) = broker.channel().await;
    let q = unique("redeclared");
    declare_queue(&admin, &q).await;
    publish(&publisher, "", &q, b"first").await;
    sync(&publisher).await;
    assert_eq!(message_count(&admin, &q).await, 1);

    admin
        .queue_delete(q.as_str().into(), Default::default())
        .await
        .expect("queue.delete");
    publish(&publisher, "", &q, b"lost").await; // no queue: dropped
    sync(&publisher).await;
    declare_queue(&admin, &q).await;
    publish(&publisher, "", &q, b"second").await;
    sync(&publisher).await;
    assert_eq!(drain_bodies(&admin, &q).await, vec!["second".to_string()]);
}

#[tokio::test]
async fn publish_follows_an_exchange_declared_again_with_other_bindings() {
    let broker = TestBroker::start();
    let (_conn, publisher) = broker.channel().await;
    let (_conn2, admin) = broker.channel().await;
    let x = unique("redeclared-x");
    let (q1, q2) = (unique("old-binding"), unique("new-binding"));
    let declare_x = |kind| {
        let admin = admin.clone();
        let x = x.clone();
        async move {
            admin
                .exchange_declare(
                    x.as_str().into(),
                    kind,
                    ExchangeDeclareOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("exchange.declare")
        }
    };
    let bind = |q: String| {
        let admin = admin.clone();
        let x = x.clone();
        async move {
            declare_queue(&admin, &q).await;
            admin
                .queue_bind(
                    q.as_str().into(),
                    x.as_str().into(),
                    "".into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("queue.bind")
        }
    };
    declare_x(lapin::ExchangeKind::Fanout).await;
    bind(q1.clone()).await;
    publish(&publisher, &x, "", b"to-old").await;
    sync(&publisher).await;

    admin
        .exchange_delete(x.as_str().into(), Default::default())
        .await
        .expect("exchange.delete");
    declare_x(lapin::ExchangeKind::Fanout).await;
    bind(q2.clone()).await;
    publish(&publisher, &x, "", b"to-new").await;
    sync(&publisher).await;
    assert_eq!(drain_bodies(&admin, &q1).await, vec!["to-old".to_string()]);
    assert_eq!(drain_bodies(&admin, &q2).await, vec!["to-new".to_string()]);

    // Deleted and not declared again: the publishing channel gets 404.
    admin
        .exchange_delete(x.as_str().into(), Default::default())
        .await
        .expect("exchange.delete");
    publish(&publisher, &x, "", b"nowhere").await;
    let (code, _) = expect_amqp_error(
        publisher
            .exchange_declare(
                "amq.direct".into(),
                lapin::ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await,
    );
    assert_eq!(code, 404);
}
