//! Sender-selected distribution (RabbitMQ's CC and BCC headers): extra routing keys chosen by
//! the publisher; BCC is removed before delivery; a header that is not an array is a 406.

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldArray, FieldTable};

use crate::common::*;

fn keys(names: &[&str]) -> AMQPValue {
    AMQPValue::FieldArray(FieldArray::from(
        names.iter().map(|n| long_str(n)).collect::<Vec<_>>(),
    ))
}

async fn get_headers(ch: &lapin::Channel, q: &str) -> Option<FieldTable> {
    let m = get_message_no_ack(ch, q).await?;
    Some(m.delivery.properties.headers().clone().unwrap_or_default())
}

#[tokio::test]
async fn cc_and_bcc_route_to_more_queues_and_bcc_is_removed() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let x = unique("sel-x");
    declare_auto_delete_exchange(&ch, &x, lapin::ExchangeKind::Direct).await;
    let names: Vec<String> = ["main", "cc", "bcc", "other"]
        .iter()
        .map(|n| unique(&format!("sel-{n}")))
        .collect();
    for q in &names {
        declare_queue(&ch, q).await;
        bind_queue(&ch, q, &x, q).await;
    }
    let (main, cc, bcc, other) = (&names[0], &names[1], &names[2], &names[3]);
    // The CC key twice and a non-string element: each queue still gets one copy.
    let headers = table(vec![
        (
            "CC",
            AMQPValue::FieldArray(FieldArray::from(vec![
                long_str(cc),
                long_str(cc),
                AMQPValue::LongInt(5),
            ])),
        ),
        ("BCC", keys(&[bcc])),
        ("x-app", long_str("kept")),
    ]);
    publish_props(
        &ch,
        &x,
        main,
        b"m",
        BasicProperties::default().with_headers(headers),
    )
    .await;
    sync(&ch).await;
    for q in [main, cc, bcc] {
        let h = get_headers(&ch, q)
            .await
            .unwrap_or_else(|| panic!("{q} got nothing"));
        assert!(h.inner().contains_key("CC"), "CC is kept: {h:?}");
        assert!(!h.inner().contains_key("BCC"), "BCC must be removed: {h:?}");
        assert!(h.inner().contains_key("x-app"), "{h:?}");
        assert!(get_headers(&ch, q).await.is_none(), "{q} got a second copy");
    }
    assert!(get_headers(&ch, other).await.is_none());
}

#[tokio::test]
async fn cc_works_on_the_default_exchange() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let (a, b) = (unique("sel-default-a"), unique("sel-default-b"));
    declare_queue(&ch, &a).await;
    declare_queue(&ch, &b).await;
    let headers = table(vec![("CC", keys(&[&b]))]);
    publish_props(
        &ch,
        "",
        &a,
        b"d",
        BasicProperties::default().with_headers(headers),
    )
    .await;
    sync(&ch).await;
    assert_eq!(message_count(&ch, &a).await, 1);
    assert_eq!(message_count(&ch, &b).await, 1);
}

#[tokio::test]
async fn a_cc_header_that_is_not_an_array_is_406() {
    let (_broker, _conn, ch, q) = broker_with_queue("sel-bad").await;
    let watch = ChannelErrorWatch::new(&ch).await;
    let headers = table(vec![("CC", long_str(&q))]);
    publish_props(
        &ch,
        "",
        &q,
        b"x",
        BasicProperties::default().with_headers(headers),
    )
    .await;
    assert_eq!(
        watch.error().await,
        (
            406,
            "PRECONDITION_FAILED - invalid message: {unacceptable_type_in_header,\"CC\",longstr}"
                .to_string()
        )
    );
}

/// A dead letter is routed by every routing key the message was published with, CC included
/// (RabbitMQ keeps the message's routing keys when no x-dead-letter-routing-key is set).
#[tokio::test]
async fn a_dead_letter_is_routed_by_its_cc_keys_too() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let dlx = unique("sel-dlx");
    declare_auto_delete_exchange(&ch, &dlx, lapin::ExchangeKind::Direct).await;
    let src = unique("sel-src");
    let args = table(vec![("x-dead-letter-exchange", long_str(&dlx))]);
    declare_queue_with(&ch, &src, args).await;
    let (by_own, by_cc) = (unique("sel-own"), unique("sel-ccq"));
    for (q, key) in [(&by_own, src.as_str()), (&by_cc, "cc-key")] {
        declare_queue(&ch, q).await;
        bind_queue(&ch, q, &dlx, key).await;
    }
    let mut headers = FieldTable::default();
    headers.insert("CC".into(), keys(&["cc-key"]));
    let props = BasicProperties::default().with_headers(headers);
    publish_props(&ch, "", &src, b"m", props).await;
    sync(&ch).await;
    get_and_reject(&ch, &src).await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &by_own).await, vec!["m"]);
    assert_eq!(drain_bodies(&ch, &by_cc).await, vec!["m"]);
    for q in [&src, &by_own, &by_cc] {
        delete_queue(&ch, q).await;
    }
}

/// With x-dead-letter-routing-key the dead letter goes by that key alone, and RabbitMQ drops
/// the CC header from it (the CC keys stay recorded in x-death's routing-keys).
#[tokio::test]
async fn a_dead_letter_routing_key_replaces_the_cc_keys_and_drops_the_cc_header() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let (src, target, cc_queue) = (unique("sel-src"), unique("sel-tgt"), unique("sel-ccq"));
    declare_queue(&ch, &target).await;
    declare_queue(&ch, &cc_queue).await;
    let args = table(vec![
        ("x-dead-letter-exchange", long_str("")),
        ("x-dead-letter-routing-key", long_str(&target)),
    ]);
    declare_queue_with(&ch, &src, args).await;
    let mut headers = FieldTable::default();
    headers.insert("CC".into(), keys(&[&cc_queue]));
    let props = BasicProperties::default().with_headers(headers);
    publish_props(&ch, "", &src, b"m", props).await;
    sync(&ch).await;
    // The CC copy went to cc_queue at publish time; take it out of the way.
    assert_eq!(drain_bodies(&ch, &cc_queue).await, vec!["m"]);
    get_and_reject(&ch, &src).await;
    sync(&ch).await;
    let dead = get_headers(&ch, &target).await.expect("the dead letter");
    assert!(!dead.inner().contains_key("CC"), "CC header: {dead:?}");
    let Some(AMQPValue::FieldArray(deaths)) = dead.inner().get("x-death") else {
        panic!("x-death: {dead:?}");
    };
    let Some(AMQPValue::FieldTable(death)) = deaths.as_slice().first() else {
        panic!("x-death: {deaths:?}");
    };
    assert_eq!(
        death.inner().get("routing-keys"),
        Some(&keys(&[&src, &cc_queue])),
    );
    assert!(
        drain_bodies(&ch, &cc_queue).await.is_empty(),
        "no dead letter by CC"
    );
    for q in [&src, &target, &cc_queue] {
        delete_queue(&ch, q).await;
    }
}
