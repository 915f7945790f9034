//! Queue expiry (`x-expires`), checked against RabbitMQ 3.10. A queue is
//! "unused" while it has no consumers and sees no basic.get or (passive or
//! full) redeclare; every such use restarts the timer. NB: polling a queue
//! with passive declares keeps it alive, so these tests sleep instead.

use std::time::Duration;

use amq_protocol::types::{AMQPValue, FieldTable};

use crate::common::*;

fn expires(ms: i32) -> FieldTable {
    table(vec![("x-expires", AMQPValue::LongInt(ms))])
}

/// Whether the queue exists: passive declare on a throw-away channel.
/// (A passive declare is itself a use that restarts the expiry timer.)
async fn exists(broker: &TestBroker, q: &str) -> bool {
    let (conn, ch) = broker.channel().await;
    let out = match declare_queue_passive(&ch, q).await {
        Ok(_) => true,
        Err(e) => {
            assert_eq!(amqp_error(&e).expect("AMQP error"), no_queue(q));
            false
        }
    };
    let _ = conn.close(200, "bye".into()).await;
    out
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[tokio::test]
async fn unused_queue_is_deleted_after_x_expires() {
    let (broker, conn, ch, q) = broker_with_queue_with("qexp-unused", expires(300)).await;
    drop(ch);
    let _ = conn.close(200, "bye".into()).await;
    sleep_ms(1200).await;
    assert!(!exists(&broker, &q).await, "queue {q} should have expired");
}

#[tokio::test]
async fn queue_with_messages_expires_too() {
    let (broker, _conn, ch, q) = broker_with_queue_with("qexp-msgs", expires(300)).await;
    for _ in 0..3 {
        publish(&ch, "", &q, b"m").await;
    }
    // Publishing is not a use.
    sleep_ms(1200).await;
    assert!(!exists(&broker, &q).await);
}

#[tokio::test]
async fn passive_declare_after_expiry_is_404() {
    let (_broker, _conn, ch, q) = broker_with_queue_with("qexp-404", expires(200)).await;
    sleep_ms(1000).await;
    assert_eq!(
        expect_amqp_error(declare_queue_passive(&ch, &q).await),
        no_queue(&q)
    );
}

#[tokio::test]
async fn consumer_keeps_queue_alive_until_cancelled() {
    let (broker, _conn, ch, q) = broker_with_queue_with("qexp-consumer", expires(300)).await;
    let consumer = consume_from(&ch, &q).await;
    sleep_ms(1000).await;
    assert!(
        exists(&broker, &q).await,
        "a consumed queue must not expire"
    );
    ch.basic_cancel(consumer.tag(), Default::default())
        .await
        .unwrap();
    // Unused again from now on.
    sleep_ms(1200).await;
    assert!(
        !exists(&broker, &q).await,
        "queue should expire after the cancel"
    );
}

#[tokio::test]
async fn redeclare_restarts_the_expiry_timer() {
    let (broker, _conn, ch, q) = broker_with_queue_with("qexp-redeclare", expires(800)).await;
    for _ in 0..4 {
        sleep_ms(400).await;
        declare_queue_with(&ch, &q, expires(800)).await;
    }
    // 1.6 s after the first declare, far more than 800 ms.
    sleep_ms(200).await;
    assert!(exists(&broker, &q).await);
    sleep_ms(2000).await;
    assert!(!exists(&broker, &q).await);
}

#[tokio::test]
async fn basic_get_restarts_the_expiry_timer() {
    let (broker, _conn, ch, q) = broker_with_queue_with("qexp-get", expires(800)).await;
    for _ in 0..4 {
        sleep_ms(400).await;
        // basic.get on an empty queue counts as a use too.
        assert_eq!(get_body(&ch, &q).await, None);
    }
    sleep_ms(200).await;
    assert!(exists(&broker, &q).await);
    sleep_ms(2000).await;
    assert!(!exists(&broker, &q).await);
}

invalid_queue_arg_tests! {
    zero_x_expires_is_406: "qexp-zero", "x-expires", AMQPValue::LongInt(0) => "{value_zero,0}";
    negative_x_expires_is_406:
        "qexp-neg", "x-expires", AMQPValue::LongInt(-1) => "{value_negative,-1}";
}
