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
