//! Exchange-to-exchange bindings (and cycles of them), alternate exchanges and internal
//! exchanges.

use amq_protocol::types::FieldTable;
use lapin::{BasicProperties, Channel, ExchangeKind, options::ExchangeDeclareOptions};

use crate::common::*;

/// Declares a fanout exchange that only other exchanges may route into.
async fn declare_internal_exchange(ch: &Channel, name: &str) {
    let options = ExchangeDeclareOptions {
        internal: true,
        ..Default::default()
    };
    declare_exchange_as(
        ch,
        name,
        ExchangeKind::Fanout,
        options,
        FieldTable::default(),
    )
    .await
}

#[tokio::test]
async fn exchange_to_exchange_binding_routes_and_unbind_stops_it() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let src = unique("e2e-src");
    let dst = unique("e2e-dst");
    declare_exchange(&ch, &src, ExchangeKind::Topic).await;
    declare_exchange(&ch, &dst, ExchangeKind::Fanout).await;
    let q = declare_tmp_queue(&ch).await;
    bind_queue(&ch, &q, &dst, "").await;
    bind_exchange(&ch, &dst, &src, "news.*").await;
    publish(&ch, &src, "news.today", b"routed").await;
    publish(&ch, &src, "sport.today", b"filtered").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["routed"]);
    unbind_exchange(&ch, &dst, &src, "news.*").await;
    publish(&ch, &src, "news.today", b"after-unbind").await;
    sync(&ch).await;
    assert!(drain_bodies(&ch, &q).await.is_empty());
    for x in [&src, &dst] {
        delete_exchange(&ch, x).await;
    }
}

#[tokio::test]
async fn exchange_binding_cycle_delivers_each_message_once_per_queue() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let a = unique("cycle-a");
    let b = unique("cycle-b");
    declare_exchange(&ch, &a, ExchangeKind::Fanout).await;
    declare_exchange(&ch, &b, ExchangeKind::Fanout).await;
    for (d, s) in [(&b, &a), (&a, &b)] {
        bind_exchange(&ch, d, s, "").await;
    }
    let qa = declare_tmp_queue(&ch).await;
    let qb = declare_tmp_queue(&ch).await;
    bind_queue(&ch, &qa, &a, "").await;
    bind_queue(&ch, &qb, &b, "").await;
    publish(&ch, &a, "", b"m").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &qa).await, vec!["m"]);
    assert_eq!(drain_bodies(&ch, &qb).await, vec!["m"]);
    for x in [&a, &b] {
        delete_exchange(&ch, x).await;
    }
}

#[tokio::test]
async fn exchange_bind_to_missing_source_is_404() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let dst = unique("e2e-dst");
    let src = unique("e2e-missing");
    declare_exchange(&ch, &dst, ExchangeKind::Fanout).await;
    assert_eq!(
        expect_amqp_error(
            ch.exchange_bind(
                dst.as_str().into(),
                src.as_str().into(),
                "".into(),
                Default::default(),
                FieldTable::default(),
            )
            .await,
        ),
        no_exchange(&src)
    );
}

#[tokio::test]
async fn unroutable_message_goes_to_alternate_exchange() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let ae = unique("ae");
    let x = unique("with-ae");
    declare_exchange(&ch, &ae, ExchangeKind::Fanout).await;
    let args = table(vec![("alternate-exchange", long_str(&ae))]);
    declare_exchange_as(&ch, &x, ExchangeKind::Direct, Default::default(), args).await;
    let routed = declare_tmp_queue(&ch).await;
    let unrouted = declare_tmp_queue(&ch).await;
    bind_queue(&ch, &routed, &x, "known").await;
    bind_queue(&ch, &unrouted, &ae, "").await;
    publish(&ch, &x, "known", b"routed").await;
    publish(&ch, &x, "unknown", b"to-ae").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &routed).await, vec!["routed"]);
    assert_eq!(drain_bodies(&ch, &unrouted).await, vec!["to-ae"]);
    // A mandatory message routed via the alternate exchange is not returned.
    ch.confirm_select(Default::default()).await.unwrap();
    let confirm = publish_mandatory_confirmed(
        &ch,
        &x,
        "unknown",
        b"mandatory-to-ae",
        BasicProperties::default(),
    )
    .await;
    assert!(confirm.is_ack());
    assert!(
        confirm.take_message().is_none(),
        "message reached the AE: no basic.return"
    );
    assert_eq!(drain_bodies(&ch, &unrouted).await, vec!["mandatory-to-ae"]);
    for e in [&x, &ae] {
        delete_exchange(&ch, e).await;
    }
}

/// RabbitMQ follows an exchange's alternate exchange only when the exchange's own bindings
/// match nothing: a binding to another exchange is a match even if that exchange routes the
/// message nowhere, and then the message is simply unroutable.
#[tokio::test]
async fn alternate_exchange_is_skipped_when_a_binding_matched_an_exchange_that_routes_nowhere() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let ae = unique("ae");
    let x = unique("with-ae");
    let dead_end = unique("dead-end");
    declare_exchange(&ch, &ae, ExchangeKind::Fanout).await;
    let args = table(vec![("alternate-exchange", long_str(&ae))]);
    declare_exchange_as(&ch, &x, ExchangeKind::Fanout, Default::default(), args).await;
    declare_exchange(&ch, &dead_end, ExchangeKind::Direct).await;
    bind_exchange(&ch, &dead_end, &x, "").await;
    let spill = declare_tmp_queue(&ch).await;
    bind_queue(&ch, &spill, &ae, "").await;
    publish(&ch, &x, "k", b"nowhere").await;
    sync(&ch).await;
    assert!(drain_bodies(&ch, &spill).await.is_empty());
    for e in [&x, &ae, &dead_end] {
        delete_exchange(&ch, e).await;
    }
}

#[tokio::test]
async fn publishing_to_internal_exchange_is_403() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let x = unique("internal");
    declare_internal_exchange(&ch, &x).await;
    let watch = ChannelErrorWatch::new(&ch).await;
    publish(&ch, &x, "", b"nope").await;
    assert_eq!(
        watch.error().await,
        access_refused(format!(
            "cannot publish to internal exchange '{x}' in vhost '/'"
        ))
    );
}

#[tokio::test]
async fn internal_exchange_receives_via_exchange_binding() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let internal = unique("internal-dst");
    let front = unique("front");
    declare_internal_exchange(&ch, &internal).await;
    declare_exchange(&ch, &front, ExchangeKind::Fanout).await;
    bind_exchange(&ch, &internal, &front, "").await;
    let q = declare_tmp_queue(&ch).await;
    bind_queue(&ch, &q, &internal, "").await;
    publish(&ch, &front, "", b"via-front").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["via-front"]);
    for e in [&front, &internal] {
        delete_exchange(&ch, e).await;
    }
}
