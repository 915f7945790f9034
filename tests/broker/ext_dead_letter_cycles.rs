//! Dead-letter cycles and chains, as RabbitMQ 3.10 handles them: a message that would come
//! back to a queue is dropped when nothing between its last visit and now was a client's
//! rejection (`rabbit_dead_letter:is_cycle`), and a long chain of queues that dead-letter into
//! each other is followed to its end without the broker recursing once per hop.

use std::time::Duration;

use amq_protocol::types::AMQPValue;

use crate::common::*;

/// A message rejected from `first` reaches `full` (x-max-length 0), which dead-letters it back
/// into itself. Its history holds a rejection, but not since its last visit to `full`: RabbitMQ
/// drops it there. (warren used to skip the cycle check for any message ever rejected and
/// recursed until the stack overflowed, killing the process.)
#[tokio::test]
async fn an_automatic_cycle_is_dropped_even_after_an_earlier_rejection() {
    let (mut broker, _conn, ch) = broker_with_channel().await;
    let (first, full) = (unique("dlc-first"), unique("dlc-full"));
    let mut full_args = dead_letter_to(&full);
    full_args.push(("x-max-length", AMQPValue::LongInt(0)));
    declare_queue_with(&ch, &full, table(full_args)).await;
    declare_queue_with(&ch, &first, table(dead_letter_to(&full))).await;
    publish(&ch, "", &first, b"loop").await;
    get_and_reject(&ch, &first).await;
    sync(&ch).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(message_count(&ch, &full).await, 0);
    assert_eq!(message_count(&ch, &first).await, 0);
    broker.assert_alive().await;
}

/// A rejection inside the cycle lets the message go round again, every time a client rejects it.
#[tokio::test]
async fn a_cycle_with_a_rejection_in_it_goes_round_again() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let q = unique("dlc-self");
    declare_queue_with(&ch, &q, table(dead_letter_to(&q))).await;
    publish(&ch, "", &q, b"again").await;
    for _ in 0..3 {
        get_and_reject(&ch, &q).await;
    }
    // The message comes back once more.
    let m = wait_for_message(&ch, &q).await;
    assert_eq!(m.delivery.data, b"again");
}

/// 2,000 queues, each with x-max-length 0 dead-lettering into the next: one publish walks the
/// whole chain and the message is dropped at its end. warren follows such chains in a loop; a
/// recursion per hop would overflow the stack.
#[tokio::test]
async fn a_long_chain_of_full_queues_is_followed_without_recursion() {
    let (mut broker, _conn, ch) = broker_with_channel().await;
    let names: Vec<String> = (0..2000)
        .map(|i| unique(&format!("dlc-chain{i}")))
        .collect();
    for (i, name) in names.iter().enumerate().rev() {
        let mut args = vec![("x-max-length", AMQPValue::LongInt(0))];
        if let Some(next) = names.get(i + 1) {
            args.extend(dead_letter_to(next));
        }
        declare_queue_with(&ch, name, table(args)).await;
    }
    publish(&ch, "", &names[0], b"down the chain").await;
    sync(&ch).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(message_count(&ch, &names[1999]).await, 0);
    broker.assert_alive().await;
    for name in &names {
        let _ = ch
            .queue_delete(name.as_str().into(), Default::default())
            .await;
    }
}

/// Ten full queues bound to one fanout exchange, each dead-lettering into it: one message
/// multiplies into a copy per path until the cycle rule ends each path (986,409 copies; warren
/// took 89 s over them, holding its connection, before it stopped cascades past a budget, with
/// a warning). The publisher is answered within 5 s and others are served.
#[tokio::test]
async fn a_mesh_of_full_queues_dead_lettering_into_each_other_ends() {
    let (mut broker, _conn, ch) = broker_with_channel().await;
    let mesh = unique("dlc-mesh");
    declare_exchange(&ch, &mesh, lapin::ExchangeKind::Fanout).await;
    let names: Vec<String> = (0..10).map(|i| unique(&format!("dlc-mesh{i}"))).collect();
    for name in &names {
        let args = table(vec![
            ("x-max-length", AMQPValue::LongInt(0)),
            ("x-dead-letter-exchange", long_str(&mesh)),
        ]);
        declare_queue_with(&ch, name, args).await;
        bind_queue(&ch, name, &mesh, "").await;
    }
    tokio::time::timeout(WAIT, async {
        publish(&ch, "", &names[0], b"multiplied").await;
        sync(&ch).await;
    })
    .await
    .expect("the publisher was answered within 5 s");
    let (_conn2, ch2) = broker.channel().await;
    sync(&ch2).await;
    for name in &names {
        assert_eq!(message_count(&ch2, name).await, 0);
    }
    broker.assert_alive().await;
    for name in &names {
        let _ = ch2
            .queue_delete(name.as_str().into(), Default::default())
            .await;
    }
    let _ = ch2
        .exchange_delete(mesh.as_str().into(), Default::default())
        .await;
}
