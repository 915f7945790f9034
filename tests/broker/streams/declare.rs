//! Declaring a stream: what it accepts, the properties, arguments and argument values it refuses
//! (RabbitMQ checks values first, then refused keys, then properties), redeclaring it
//! differently, and the management API's view of it.

use amq_protocol::types::AMQPValue;
use lapin::options::QueueDeclareOptions;

use super::*;

/// queue.declare of `name` that must fail: the (code, text) of the error.
async fn refusal(
    broker: &TestBroker,
    name: &str,
    options: QueueDeclareOptions,
    extra: Vec<(&str, AMQPValue)>,
) -> (u16, String) {
    let (_conn, ch) = broker.channel().await;
    expect_amqp_error(
        ch.queue_declare(name.into(), options, stream_args(extra))
            .await,
    )
}

/// Extra queue arguments, as [`stream_args`] takes them.
type Arguments = Vec<(&'static str, AMQPValue)>;

fn options(durable: bool, exclusive: bool, auto_delete: bool) -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable,
        exclusive,
        auto_delete,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_is_declared_redeclared_and_shown_with_its_type() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let name = unique("stream");
    let ok = declare_durable_queue_with(&ch, &name, stream_args(vec![])).await;
    assert_eq!((ok.message_count(), ok.consumer_count()), (0, 0));
    declare_durable_queue_with(&ch, &name, stream_args(vec![])).await;
    // Unknown keys are accepted; so is, on a redeclare only, a key refused at creation.
    declare_durable_queue_with(&ch, &name, stream_args(vec![("x-foo", long_str("bar"))])).await;
    declare_durable_queue_with(
        &ch,
        &name,
        stream_args(vec![("x-max-length", AMQPValue::LongInt(1))]),
    )
    .await;
    publish_each_confirmed(&conn, &name, 0..3).await;
    // RabbitMQ's counts for a stream are statistics: they get there asynchronously.
    let http = crate::common::http::Http::new(&broker.management_url());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let shown = loop {
        let shown = http.get(&format!("/api/queues/%2F/{name}"));
        if shown.body["messages"] == 3 || std::time::Instant::now() > deadline {
            break shown.body;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(shown["messages"], 3, "{shown}");
    let fields = ["type", "durable", "auto_delete", "exclusive", "arguments"]
        .map(|k| (k, shown[k].clone()))
        .to_vec();
    let expected = serde_json::json!({
        "type": "stream", "durable": true, "auto_delete": false, "exclusive": false,
        "arguments": {"x-queue-type": "stream"},
    });
    assert_eq!(
        fields,
        ["type", "durable", "auto_delete", "exclusive", "arguments"]
            .map(|k| (k, expected[k].clone()))
            .to_vec()
    );
    assert_eq!(
        (&shown["messages_ready"], &shown["messages_unacknowledged"]),
        (&3.into(), &0.into())
    );
    delete_queue(&ch, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_refuses_non_durable_exclusive_and_auto_delete_in_that_order() {
    let broker = TestBroker::start();
    let name = unique("stream-refused");
    let cases = [
        (options(false, false, false), "non-durable"),
        (options(true, true, false), "exclusive-owner"),
        (options(true, false, true), "auto-delete"),
        (options(false, true, false), "exclusive-owner"),
        (options(false, false, true), "auto-delete"),
        (options(true, true, true), "auto-delete"),
        (options(false, true, true), "auto-delete"),
    ];
    for (options, property) in cases {
        assert_eq!(
            refusal(&broker, &name, options, vec![]).await,
            precondition_failed(format!(
                "invalid property '{property}' for queue '{name}' in vhost '/'"
            )),
            "{options:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_refuses_the_arguments_of_other_queue_types() {
    let broker = TestBroker::start();
    let name = unique("stream-arg");
    let refused = [
        ("x-max-length", AMQPValue::LongInt(10)),
        ("x-message-ttl", AMQPValue::LongInt(1000)),
        ("x-dead-letter-exchange", long_str("dlx")),
        ("x-dead-letter-routing-key", long_str("rk")),
        ("x-overflow", long_str("drop-head")),
        ("x-expires", AMQPValue::LongInt(10000)),
        ("x-max-priority", AMQPValue::LongInt(5)),
        ("x-single-active-consumer", AMQPValue::Boolean(true)),
        ("x-delivery-limit", AMQPValue::LongInt(5)),
        ("x-queue-mode", long_str("lazy")),
        ("x-max-in-memory-length", AMQPValue::LongInt(10)),
        ("x-max-in-memory-bytes", AMQPValue::LongInt(10)),
        ("x-queue-master-locator", long_str("client-local")),
        ("x-quorum-initial-group-size", AMQPValue::LongInt(1)),
        ("x-queue-version", AMQPValue::LongInt(2)),
        ("x-dead-letter-strategy", long_str("at-least-once")),
    ];
    for (key, value) in refused {
        assert_eq!(
            refusal(&broker, &name, durable(), vec![(key, value)]).await,
            precondition_failed(format!(
                "invalid arg '{key}' for queue '{name}' in vhost '/' of queue type rabbit_stream_queue"
            ))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argument_values_are_checked_before_refused_keys_and_refused_keys_before_properties() {
    let broker = TestBroker::start();
    let name = unique("stream-order");
    let what = format!("queue '{name}' in vhost '/'");
    let negative = invalid_queue_arg(&name, "x-max-length-bytes", "{value_negative,-1}");
    let cases: Vec<(QueueDeclareOptions, Arguments, (u16, String))> = vec![
        (
            // The first refused key in table order (lapin sends its keys sorted).
            durable(),
            vec![
                ("x-message-ttl", AMQPValue::LongInt(5)),
                ("x-max-length", AMQPValue::LongInt(1)),
            ],
            precondition_failed(format!(
                "invalid arg 'x-max-length' for {what} of queue type rabbit_stream_queue"
            )),
        ),
        (
            options(false, true, true),
            vec![("x-max-length", AMQPValue::LongInt(1))],
            precondition_failed(format!(
                "invalid arg 'x-max-length' for {what} of queue type rabbit_stream_queue"
            )),
        ),
        (
            durable(),
            vec![
                ("x-max-length", AMQPValue::LongInt(5)),
                ("x-max-length-bytes", AMQPValue::LongInt(-1)),
            ],
            negative.clone(),
        ),
        (
            options(false, false, false),
            vec![("x-max-length-bytes", AMQPValue::LongInt(-1))],
            negative,
        ),
        (
            // x-max-age before the segment size, whatever the table order.
            durable(),
            vec![
                ("x-max-age", long_str("10x")),
                ("x-stream-max-segment-size-bytes", AMQPValue::LongInt(-1)),
            ],
            invalid_queue_arg(&name, "x-max-age", "invalid_max_age"),
        ),
    ];
    for (options, extra, expected) in cases {
        assert_eq!(
            refusal(&broker, &name, options, extra.clone()).await,
            expected,
            "{extra:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_accepts_its_own_arguments_and_unknown_ones() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let mut accepted = vec![
        ("x-max-length-bytes", AMQPValue::LongInt(0)),
        ("x-max-length-bytes", AMQPValue::LongLongInt(1 << 40)),
        ("x-stream-max-segment-size-bytes", AMQPValue::LongInt(0)),
        (
            "x-stream-max-segment-size-bytes",
            AMQPValue::LongLongInt(3_000_000_000),
        ),
        ("x-initial-cluster-size", AMQPValue::LongInt(1)),
        ("x-queue-leader-locator", long_str("client-local")),
        ("x-consumer-timeout", AMQPValue::LongInt(1000)),
        ("x-foo", long_str("bar")),
    ];
    for age in ["7D", "1h", "30m", "10s", "1Y", "1M", "1m", "01h", "100000Y"] {
        accepted.push(("x-max-age", long_str(age)));
    }
    for (key, value) in accepted {
        let name = declare_stream(&ch, "stream-ok", vec![(key, value)]).await;
        delete_queue(&ch, &name).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_refuses_these_argument_values() {
    let broker = TestBroker::start();
    let name = unique("stream-value");
    let mut cases = vec![
        (
            "x-max-age",
            AMQPValue::LongInt(3600),
            "{unacceptable_type,signedint}",
        ),
        (
            "x-max-age",
            AMQPValue::Boolean(true),
            "{unacceptable_type,bool}",
        ),
        (
            "x-max-length-bytes",
            AMQPValue::LongInt(-1),
            "{value_negative,-1}",
        ),
        (
            "x-max-length-bytes",
            long_str("1000"),
            "\"expected integer, got longstr\"",
        ),
        (
            "x-max-length-bytes",
            AMQPValue::Boolean(true),
            "\"expected integer, got bool\"",
        ),
        (
            "x-stream-max-segment-size-bytes",
            AMQPValue::LongInt(-1),
            "{value_negative,-1}",
        ),
        (
            "x-stream-max-segment-size-bytes",
            long_str("500"),
            "\"expected integer, got longstr\"",
        ),
    ];
    for age in [
        "0s", "0D", "10x", "10", "1 h", "1d", "1H", "1.5h", "1hh", "1D1h", "1h ",
    ] {
        cases.push(("x-max-age", long_str(age), "invalid_max_age"));
    }
    for (key, value, reason) in cases {
        assert_eq!(
            refusal(&broker, &name, durable(), vec![(key, value.clone())]).await,
            invalid_queue_arg(&name, key, reason),
            "{key} = {value:?}"
        );
    }
    for size in [3_000_000_001_i64, 1 << 32] {
        let extra = vec![(
            "x-stream-max-segment-size-bytes",
            AMQPValue::LongLongInt(size),
        )];
        assert_eq!(
            refusal(&broker, &name, durable(), extra).await,
            precondition_failed("Exceeded max value for x-stream-max-segment-size-bytes")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_x_max_age_not_starting_with_a_digit_is_refused_with_406() {
    // RabbitMQ 3.10 crashes parsing it (list_to_integer of nothing): 541 INTERNAL_ERROR, the
    // connection closes. warren refuses it as any other bad x-max-age.
    let broker = TestBroker::start();
    for age in ["abc", "", "h", "-1h", " 1h"] {
        let name = unique("stream-age");
        let expected = if external() {
            internal_error()
        } else {
            precondition_failed(format!(
                "invalid arg 'x-max-age' for queue '{name}' in vhost '/': invalid_max_age"
            ))
        };
        assert_eq!(
            refusal(
                &broker,
                &name,
                durable(),
                vec![("x-max-age", long_str(age))]
            )
            .await,
            expected,
            "x-max-age {age:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeclaring_a_stream_differently_is_refused() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let name = declare_stream(&ch, "stream-redeclare", vec![]).await;
    let inequivalent = |arg: &str, received: &str, current: &str| {
        precondition_failed(format!(
            "inequivalent arg '{arg}' for queue '{name}' in vhost '/': received {received} but current is {current}"
        ))
    };
    let none = || FieldTable::default();
    let cases: Vec<(QueueDeclareOptions, FieldTable, (u16, String))> = vec![
        (
            durable(),
            none(),
            inequivalent(
                "x-queue-type",
                "none",
                "the value 'stream' of type 'longstr'",
            ),
        ),
        (
            durable(),
            table(vec![("x-queue-type", long_str("classic"))]),
            inequivalent("x-queue-type", "'classic'", "'stream'"),
        ),
        (
            durable(),
            table(vec![("x-queue-type", long_str("quorum"))]),
            inequivalent("x-queue-type", "'quorum'", "'stream'"),
        ),
        (
            options(false, false, false),
            stream_args(vec![]),
            inequivalent("durable", "'false'", "'true'"),
        ),
        (
            options(true, false, true),
            stream_args(vec![]),
            inequivalent("auto_delete", "'true'", "'false'"),
        ),
        (
            durable(),
            stream_args(vec![("x-max-age", long_str("1h"))]),
            inequivalent("x-max-age", "the value '1h' of type 'longstr'", "none"),
        ),
        (
            durable(),
            stream_args(vec![("x-max-length-bytes", AMQPValue::LongInt(1000))]),
            inequivalent(
                "x-max-length-bytes",
                "the value '1000' of type 'signedint'",
                "none",
            ),
        ),
        (
            durable(),
            stream_args(vec![(
                "x-stream-max-segment-size-bytes",
                AMQPValue::LongInt(1000),
            )]),
            inequivalent(
                "x-stream-max-segment-size-bytes",
                "the value '1000' of type 'signedint'",
                "none",
            ),
        ),
        (
            durable(),
            stream_args(vec![("x-initial-cluster-size", AMQPValue::LongInt(1))]),
            inequivalent(
                "x-initial-cluster-size",
                "the value '1' of type 'signedint'",
                "none",
            ),
        ),
        (
            durable(),
            stream_args(vec![("x-queue-leader-locator", long_str("client-local"))]),
            inequivalent(
                "x-queue-leader-locator",
                "the value 'client-local' of type 'longstr'",
                "none",
            ),
        ),
        (
            options(true, true, false),
            stream_args(vec![]),
            resource_locked(format!(
                "cannot obtain exclusive access to locked queue '{name}' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration."
            )),
        ),
    ];
    for (options, args, expected) in cases {
        let (_conn, other) = broker.channel().await;
        let got = expect_amqp_error(
            other
                .queue_declare(name.as_str().into(), options, args)
                .await,
        );
        assert_eq!(got, expected);
    }
    delete_queue(&ch, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeclaring_a_stream_compares_its_max_age_but_not_other_queue_types_keys() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let age = || ("x-max-age", long_str("1h"));
    let name = declare_stream(&ch, "stream-redeclare-age", vec![age()]).await;
    let ignored = [
        ("x-message-ttl", AMQPValue::LongInt(5)),
        ("x-max-priority", AMQPValue::LongInt(3)),
        ("x-dead-letter-exchange", long_str("d")),
        ("x-consumer-timeout", AMQPValue::LongInt(1000)),
    ];
    for extra in ignored {
        declare_durable_queue_with(&ch, &name, stream_args(vec![age(), extra])).await;
    }
    let inequivalent = |received: &str| {
        precondition_failed(format!(
            "inequivalent arg 'x-max-age' for queue '{name}' in vhost '/': received {received}"
        ))
    };
    let cases = [
        (
            vec![("x-max-age", long_str("60m"))],
            "'60m' but current is '1h'",
        ),
        (
            vec![],
            "none but current is the value '1h' of type 'longstr'",
        ),
    ];
    for (extra, received) in cases {
        let (_conn, other) = broker.channel().await;
        let got = expect_amqp_error(
            other
                .queue_declare(name.as_str().into(), durable(), stream_args(extra))
                .await,
        );
        assert_eq!(got, inequivalent(received));
    }
    delete_queue(&ch, &name).await;
}
