//! queue.bind and queue.unbind: routing follows the bindings, binding arguments tell bindings
//! apart, and a missing queue or exchange is a 404.

use lapin::ExchangeKind;

use crate::common::*;

#[tokio::test]
async fn queue_bind_and_unbind_control_routing() {
    let (_broker, _conn, ch, x) = broker_with_exchange("bind-x", ExchangeKind::Direct).await;
    let q = declare_tmp_queue(&ch).await;
    bind_queue(&ch, &q, &x, "k").await;
    publish(&ch, &x, "k", b"bound").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["bound"]);
    unbind_queue(&ch, &q, &x, "k").await;
    publish(&ch, &x, "k", b"unbound").await;
    sync(&ch).await;
    assert!(drain_bodies(&ch, &q).await.is_empty());
    // Unbinding a binding that does not exist is not an error.
    unbind_queue(&ch, &q, &x, "never-bound").await;
    delete_exchange(&ch, &x).await;
}

#[tokio::test]
async fn binding_arguments_distinguish_bindings() {
    let (_broker, _conn, ch, x) = broker_with_exchange("bind-args", ExchangeKind::Headers).await;
    let q = declare_tmp_queue(&ch).await;
    let a = table(vec![("h", long_str("a"))]);
    let b = table(vec![("h", long_str("b"))]);
    for args in [&a, &b] {
        bind_queue_with(&ch, &q, &x, "", args.clone()).await;
    }
    // Removing the "a" binding leaves "b" in place.
    ch.queue_unbind(q.as_str().into(), x.as_str().into(), "".into(), a.clone())
        .await
        .unwrap();
    for h in ["a", "b"] {
        publish_props(
            &ch,
            &x,
            "",
            h.as_bytes(),
            lapin::BasicProperties::default().with_headers(table(vec![("h", long_str(h))])),
        )
        .await;
    }
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["b"]);
    delete_exchange(&ch, &x).await;
}

#[tokio::test]
async fn binding_to_missing_exchange_is_404() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    let x = unique("no-x");
    assert_eq!(bind_queue_error(&ch, &q, &x, "k").await, no_exchange(&x));
}

#[tokio::test]
async fn binding_missing_queue_is_404() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let q = unique("no-q");
    assert_eq!(
        bind_queue_error(&ch, &q, "amq.direct", "k").await,
        no_queue(&q)
    );
}
