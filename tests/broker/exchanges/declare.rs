//! exchange.declare and exchange.delete: the predeclared `amq.*` exchanges, passive declares,
//! equivalence, reserved names, the default exchange, if-unused and auto-delete.

use amq_protocol::types::FieldTable;
use lapin::{
    ExchangeKind,
    options::{ExchangeDeclareOptions, ExchangeDeleteOptions},
};

use crate::common::*;

const DEFAULT_EXCHANGE_REFUSED: &str =
    "ACCESS_REFUSED - operation not permitted on the default exchange";

#[tokio::test]
async fn predeclared_amq_exchanges_exist_with_their_types() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    for (name, kind) in [
        ("amq.direct", ExchangeKind::Direct),
        ("amq.fanout", ExchangeKind::Fanout),
        ("amq.topic", ExchangeKind::Topic),
        ("amq.headers", ExchangeKind::Headers),
        ("amq.match", ExchangeKind::Headers),
    ] {
        declare_exchange_passive(&ch, name, kind.clone())
            .await
            .unwrap_or_else(|e| panic!("{name} must exist: {e:?}"));
        // Redeclaring them with their own (durable) attributes is allowed.
        ch.exchange_declare(
            name.into(),
            kind,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("equivalent redeclare of {name}: {e:?}"));
    }
}

#[tokio::test]
async fn passive_declare_of_missing_exchange_is_404() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let x = unique("missing-x");
    let (code, text) =
        expect_amqp_error(declare_exchange_passive(&ch, &x, ExchangeKind::Direct).await);
    assert_eq!((code, text), no_exchange(&x));
}

#[tokio::test]
async fn passive_declare_of_existing_exchange_ignores_type_and_flags() {
    let (_broker, _conn, ch, x) = broker_with_exchange("passive-x", ExchangeKind::Topic).await;
    ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions {
            passive: true,
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("passive declare only checks existence");
}

#[tokio::test]
async fn redeclaring_exchange_with_same_attributes_is_ok() {
    let (_broker, _conn, ch, x) = broker_with_exchange("same-x", ExchangeKind::Direct).await;
    declare_exchange(&ch, &x, ExchangeKind::Direct).await;
}

#[tokio::test]
async fn redeclaring_exchange_with_other_type_is_406_inequivalent_arg() {
    let (_broker, _conn, ch, x) = broker_with_exchange("equiv-type", ExchangeKind::Direct).await;
    assert_eq!(
        declare_exchange_error(&ch, &x, ExchangeKind::Fanout, Default::default()).await,
        inequivalent_arg("exchange", &x, "type", "fanout", "direct")
    );
}

/// An exchange of `kind` named after `prefix` (declared without flags) redeclared with the one
/// flag `options` sets: RabbitMQ's 406 for the inequivalent `flag` (received true, current false).
async fn assert_flag_is_inequivalent(
    prefix: &str,
    kind: ExchangeKind,
    options: ExchangeDeclareOptions,
    flag: &str,
) {
    let (_broker, _conn, ch, x) = broker_with_exchange(prefix, kind.clone()).await;
    assert_eq!(
        declare_exchange_error(&ch, &x, kind, options).await,
        inequivalent_arg("exchange", &x, flag, "true", "false")
    );
}

#[tokio::test]
async fn redeclaring_exchange_with_other_durability_is_406_inequivalent_arg() {
    let options = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    assert_flag_is_inequivalent("equiv-durable", ExchangeKind::Direct, options, "durable").await;
}

#[tokio::test]
async fn redeclaring_exchange_with_other_auto_delete_is_406_inequivalent_arg() {
    let options = ExchangeDeclareOptions {
        auto_delete: true,
        ..Default::default()
    };
    assert_flag_is_inequivalent("equiv-ad", ExchangeKind::Direct, options, "auto_delete").await;
}

#[tokio::test]
async fn redeclaring_exchange_with_other_internal_flag_is_406() {
    let options = ExchangeDeclareOptions {
        internal: true,
        ..Default::default()
    };
    assert_flag_is_inequivalent("equiv-internal", ExchangeKind::Fanout, options, "internal").await;
}

#[tokio::test]
async fn declaring_exchange_with_amq_prefix_is_403() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let x = format!("amq.{}", unique("custom"));
    let (code, text) =
        declare_exchange_error(&ch, &x, ExchangeKind::Direct, Default::default()).await;
    assert_eq!(code, 403);
    assert_eq!(
        text,
        format!("ACCESS_REFUSED - exchange name '{x}' contains reserved prefix 'amq.*'")
    );
}

#[tokio::test]
async fn deleting_amq_exchange_is_403() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    assert_eq!(
        expect_amqp_error(
            ch.exchange_delete("amq.direct".into(), ExchangeDeleteOptions::default())
                .await,
        ),
        (
            403,
            "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed"
                .to_string()
        )
    );
}

#[tokio::test]
async fn declaring_unknown_exchange_type_is_503_connection_error() {
    let (_broker, conn, ch) = broker_with_channel().await;
    let x = unique("bad-type");
    assert_eq!(
        declare_exchange_error(
            &ch,
            &x,
            ExchangeKind::Custom("x-no-such-type".into()),
            Default::default(),
        )
        .await,
        command_invalid("unknown exchange type 'x-no-such-type'")
    );
    // A hard error: the whole connection is gone.
    assert!(conn.create_channel().await.is_err());
}

#[tokio::test]
async fn exchange_delete_removes_it_and_its_bindings() {
    let (_broker, conn, ch, x) = broker_with_exchange("del-x", ExchangeKind::Fanout).await;
    let q = declare_tmp_queue(&ch).await;
    bind_queue(&ch, &q, &x, "").await;
    ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .expect("delete");
    let (code, _) =
        expect_amqp_error(declare_exchange_passive(&ch, &x, ExchangeKind::Fanout).await);
    assert_eq!(code, 404);
    // Re-creating it does not bring the old binding back.
    let ch = conn.create_channel().await.unwrap();
    declare_exchange(&ch, &x, ExchangeKind::Fanout).await;
    publish(&ch, &x, "", b"m").await;
    sync(&ch).await;
    assert!(drain_bodies(&ch, &q).await.is_empty());
    delete_exchange(&ch, &x).await;
}

#[tokio::test]
async fn deleting_missing_exchange_is_ok() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    ch.exchange_delete(
        unique("never-existed").as_str().into(),
        ExchangeDeleteOptions::default(),
    )
    .await
    .expect("RabbitMQ 3.x treats exchange.delete of a missing exchange as success");
    sync(&ch).await;
    assert!(ch.status().connected());
}

#[tokio::test]
async fn exchange_delete_if_unused_with_bindings_is_406() {
    let (_broker, _conn, ch, x) = broker_with_exchange("in-use", ExchangeKind::Direct).await;
    let q = declare_tmp_queue(&ch).await;
    bind_queue(&ch, &q, &x, "k").await;
    assert_eq!(
        expect_amqp_error(
            ch.exchange_delete(
                x.as_str().into(),
                ExchangeDeleteOptions {
                    if_unused: true,
                    ..Default::default()
                },
            )
            .await,
        ),
        precondition_failed(format!("exchange '{x}' in vhost '/' in use"))
    );
}

#[tokio::test]
async fn exchange_delete_if_unused_without_bindings_deletes() {
    let (_broker, _conn, ch, x) = broker_with_exchange("unused", ExchangeKind::Direct).await;
    ch.exchange_delete(
        x.as_str().into(),
        ExchangeDeleteOptions {
            if_unused: true,
            ..Default::default()
        },
    )
    .await
    .expect("delete unused exchange");
    let (code, _) =
        expect_amqp_error(declare_exchange_passive(&ch, &x, ExchangeKind::Direct).await);
    assert_eq!(code, 404);
}

#[tokio::test]
async fn auto_delete_exchange_is_deleted_when_its_last_binding_goes() {
    let (_broker, conn, ch) = broker_with_channel().await;
    let x = unique("auto-del-x");
    declare_auto_delete_exchange(&ch, &x, ExchangeKind::Direct).await;
    let q1 = declare_tmp_queue(&ch).await;
    let q2 = declare_tmp_queue(&ch).await;
    bind_queue(&ch, &q1, &x, "a").await;
    bind_queue(&ch, &q2, &x, "b").await;
    unbind_queue(&ch, &q1, &x, "a").await;
    // One binding left: still there.
    declare_exchange_passive(&ch, &x, ExchangeKind::Direct)
        .await
        .expect("exchange with a binding left must exist");
    unbind_queue(&ch, &q2, &x, "b").await;
    let (code, _) =
        expect_amqp_error(declare_exchange_passive(&ch, &x, ExchangeKind::Direct).await);
    assert_eq!(
        code, 404,
        "auto-delete exchange must go with its last binding"
    );
    drop(conn);
}

#[tokio::test]
async fn auto_delete_exchange_without_bindings_stays() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let x = unique("auto-del-never-bound");
    declare_auto_delete_exchange(&ch, &x, ExchangeKind::Fanout).await;
    sync(&ch).await;
    declare_exchange_passive(&ch, &x, ExchangeKind::Fanout)
        .await
        .expect("never-bound auto-delete exchange must exist");
    delete_exchange(&ch, &x).await;
}

#[tokio::test]
async fn publishing_to_missing_exchange_is_404_channel_error() {
    let (_broker, conn, ch) = broker_with_channel().await;
    let x = unique("missing-x");
    let watch = ChannelErrorWatch::new(&ch).await;
    publish(&ch, &x, "k", b"lost").await;
    assert_eq!(watch.error().await, no_exchange(&x));
    // Only the channel is closed.
    let ch2 = conn
        .create_channel()
        .await
        .expect("connection survives a channel error");
    sync(&ch2).await;
}

#[tokio::test]
async fn operations_on_default_exchange_are_403() {
    let (_broker, conn, ch, q) = broker_with_tmp_queue().await;
    let (code, text) = bind_queue_error(&ch, &q, "", "k").await;
    assert_eq!((code, text.as_str()), (403, DEFAULT_EXCHANGE_REFUSED));
    let ch = conn.create_channel().await.unwrap();
    let (code, text) = expect_amqp_error(
        ch.exchange_delete("".into(), ExchangeDeleteOptions::default())
            .await,
    );
    assert_eq!((code, text.as_str()), (403, DEFAULT_EXCHANGE_REFUSED));
    let ch = conn.create_channel().await.unwrap();
    let (code, text) =
        declare_exchange_error(&ch, "", ExchangeKind::Direct, Default::default()).await;
    assert_eq!((code, text.as_str()), (403, DEFAULT_EXCHANGE_REFUSED));
}

#[tokio::test]
async fn exchange_names_are_case_sensitive() {
    let (_broker, _conn, ch, x) = broker_with_exchange("Case", ExchangeKind::Direct).await;
    let (code, _) = expect_amqp_error(
        declare_exchange_passive(&ch, &x.to_lowercase(), ExchangeKind::Direct).await,
    );
    assert_eq!(code, 404);
}
