//! [`QueueArguments::parse`] and [`QueueArguments::check_equivalent`]: every argument's accepted
//! values and typed result, and its refusals in RabbitMQ 3.10's words.

use amq_protocol::types::{AMQPValue, FieldTable, LongString};

use super::*;

const WHAT: &str = "queue 'q' in vhost '/'";

fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (key, v) in entries {
        t.insert((*key).into(), v.clone());
    }
    t
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

fn parse(key: &str, v: AMQPValue) -> QueueArguments {
    QueueArguments::parse(table(&[(key, v)]), WHAT).expect("accepted")
}

/// The reason part of the 406 text for one argument (after `for queue 'q' in vhost '/': `).
fn refusal(key: &str, v: AMQPValue) -> String {
    let err = QueueArguments::parse(table(&[(key, v)]), WHAT).expect_err("refused");
    assert_eq!(err.code, 406, "{}", err.text);
    let prefix = format!("PRECONDITION_FAILED - invalid arg '{key}' for {WHAT}: ");
    err.text
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("unexpected text: {}", err.text))
        .to_string()
}

#[test]
fn no_arguments_are_the_defaults() {
    let args = QueueArguments::parse(FieldTable::default(), WHAT).unwrap();
    assert_eq!(args.max_length, None);
    assert_eq!(args.max_length_bytes, None);
    assert_eq!(args.overflow, Overflow::DropHead);
    assert_eq!(args.message_ttl_ms, None);
    assert_eq!(args.expires_ms, None);
    assert!(args.dead_letter.is_none());
    assert_eq!(args.max_priority, 0);
    assert!(!args.single_active_consumer);
    assert_eq!(args.consumer_timeout_ms, None);
    assert_eq!(args.delivery_limit, None);
    assert_eq!(args.mode, QueueMode::Default);
}

#[test]
fn integers_of_any_width_are_read() {
    assert_eq!(
        parse("x-max-length", AMQPValue::ShortShortUInt(7)).max_length,
        Some(7)
    );
    assert_eq!(
        parse("x-max-length", AMQPValue::ShortInt(7)).max_length,
        Some(7)
    );
    assert_eq!(
        parse("x-max-length", AMQPValue::LongUInt(7)).max_length,
        Some(7)
    );
    assert_eq!(
        parse("x-max-length", AMQPValue::LongLongInt(0)).max_length,
        Some(0)
    );
}

#[test]
fn max_length_and_bytes_are_non_negative_integers() {
    assert_eq!(
        parse("x-max-length-bytes", AMQPValue::LongInt(1024)).max_length_bytes,
        Some(1024)
    );
    for key in ["x-max-length", "x-max-length-bytes"] {
        assert_eq!(
            refusal(key, AMQPValue::LongLongInt(-1)),
            "{value_negative,-1}"
        );
        assert_eq!(refusal(key, text("10")), "{unacceptable_type,longstr}");
        assert_eq!(
            refusal(key, AMQPValue::Double(1.0)),
            "{unacceptable_type,double}"
        );
        // A timestamp is not an integer for RabbitMQ.
        assert_eq!(
            refusal(key, AMQPValue::Timestamp(1)),
            "{unacceptable_type,timestamp}"
        );
    }
}

#[test]
fn negative_max_length_is_refused_in_rabbitmq_words() {
    let err = QueueArguments::parse(table(&[("x-max-length", AMQPValue::LongLongInt(-1))]), WHAT)
        .unwrap_err();
    assert_eq!(
        err.text,
        "PRECONDITION_FAILED - invalid arg 'x-max-length' for queue 'q' in vhost '/': {value_negative,-1}"
    );
}

#[test]
fn overflow_takes_the_three_rabbitmq_modes() {
    for (mode, expected) in [
        ("drop-head", Overflow::DropHead),
        ("reject-publish", Overflow::RejectPublish),
        ("reject-publish-dlx", Overflow::RejectPublishDlx),
    ] {
        assert_eq!(parse("x-overflow", text(mode)).overflow, expected);
    }
    assert_eq!(refusal("x-overflow", text("drop-tail")), "invalid_overflow");
    assert_eq!(
        refusal("x-overflow", AMQPValue::LongInt(1)),
        "{unacceptable_type,signedint}"
    );
}

#[test]
fn message_ttl_is_zero_up_to_ten_years() {
    assert_eq!(
        parse("x-message-ttl", AMQPValue::LongInt(0)).message_ttl_ms,
        Some(0)
    );
    assert_eq!(
        parse("x-message-ttl", AMQPValue::LongLongInt(MAX_EXPIRY)).message_ttl_ms,
        Some(MAX_EXPIRY as u64)
    );
    assert_eq!(
        refusal("x-message-ttl", AMQPValue::LongInt(-1)),
        "{value_negative,-1}"
    );
    assert_eq!(
        refusal("x-message-ttl", AMQPValue::LongLongInt(MAX_EXPIRY + 1)),
        "{value_too_large,315360000001,315360000000}"
    );
    assert_eq!(
        refusal("x-message-ttl", text("1000")),
        "{unacceptable_type,longstr}"
    );
}

#[test]
fn expires_is_positive_up_to_ten_years() {
    assert_eq!(
        parse("x-expires", AMQPValue::LongInt(1)).expires_ms,
        Some(1)
    );
    assert_eq!(
        refusal("x-expires", AMQPValue::LongInt(0)),
        "{value_zero,0}"
    );
    assert_eq!(
        refusal("x-expires", AMQPValue::LongInt(-1)),
        "{value_negative,-1}"
    );
    assert_eq!(
        refusal("x-expires", AMQPValue::LongLongInt(MAX_EXPIRY + 1)),
        "{value_too_large,315360000001,315360000000}"
    );
    assert_eq!(
        refusal("x-expires", AMQPValue::Boolean(true)),
        "{unacceptable_type,bool}"
    );
}

#[test]
fn dead_letter_exchange_with_or_without_routing_key() {
    let args = parse("x-dead-letter-exchange", text("dlx"));
    let target = args.dead_letter.expect("target");
    assert_eq!(target.exchange, "dlx");
    assert_eq!(target.routing_key, None);

    let args = QueueArguments::parse(
        table(&[
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text("dead")),
        ]),
        WHAT,
    )
    .unwrap();
    let target = args.dead_letter.expect("target");
    assert_eq!(
        target.exchange, "",
        "the default exchange is a valid target"
    );
    assert_eq!(target.routing_key.as_deref(), Some("dead"));
}

#[test]
fn dead_letter_routing_key_needs_an_exchange() {
    assert_eq!(
        refusal("x-dead-letter-routing-key", text("dead")),
        "routing_key_but_no_dlx_defined"
    );
}

#[test]
fn dead_letter_arguments_are_strings() {
    for key in ["x-dead-letter-exchange", "x-dead-letter-routing-key"] {
        assert_eq!(
            refusal(key, AMQPValue::LongInt(1)),
            "{unacceptable_type,signedint}"
        );
    }
}

#[test]
fn a_type_error_is_reported_before_a_missing_dead_letter_exchange() {
    let err = QueueArguments::parse(
        table(&[
            ("x-dead-letter-routing-key", text("dead")),
            ("x-max-length", AMQPValue::LongInt(-1)),
        ]),
        WHAT,
    )
    .unwrap_err();
    assert!(
        err.text.contains("'x-max-length'") && err.text.ends_with("{value_negative,-1}"),
        "{}",
        err.text
    );
}

#[test]
fn max_priority_is_zero_to_255() {
    assert_eq!(
        parse("x-max-priority", AMQPValue::ShortShortUInt(10)).max_priority,
        10
    );
    assert_eq!(
        parse("x-max-priority", AMQPValue::LongInt(255)).max_priority,
        255
    );
    assert_eq!(
        parse("x-max-priority", AMQPValue::LongInt(0)).max_priority,
        0
    );
    assert_eq!(
        refusal("x-max-priority", AMQPValue::LongInt(256)),
        "{max_value_exceeded,256}"
    );
    assert_eq!(
        refusal("x-max-priority", AMQPValue::LongInt(-1)),
        "{value_negative,-1}"
    );
    assert_eq!(
        refusal("x-max-priority", text("10")),
        "\"expected integer, got longstr\""
    );
}

#[test]
fn single_active_consumer_is_a_boolean() {
    assert!(parse("x-single-active-consumer", AMQPValue::Boolean(true)).single_active_consumer);
    assert!(!parse("x-single-active-consumer", AMQPValue::Boolean(false)).single_active_consumer);
    assert_eq!(
        refusal("x-single-active-consumer", text("true")),
        "{unacceptable_type,longstr}"
    );
    assert_eq!(
        refusal("x-single-active-consumer", AMQPValue::LongInt(1)),
        "{unacceptable_type,signedint}"
    );
}

#[test]
fn consumer_timeout_is_a_non_negative_integer() {
    assert_eq!(
        parse("x-consumer-timeout", AMQPValue::LongInt(60_000)).consumer_timeout_ms,
        Some(60_000)
    );
    assert_eq!(
        parse("x-consumer-timeout", AMQPValue::LongInt(0)).consumer_timeout_ms,
        Some(0),
        "0 turns the broker's default off"
    );
    assert_eq!(
        refusal("x-consumer-timeout", AMQPValue::LongInt(-1)),
        "{value_negative,-1}"
    );
}

#[test]
fn delivery_limit_is_a_quorum_queues_non_negative_integer() {
    let quorum = |v: AMQPValue| {
        QueueArguments::parse(
            table(&[
                ("x-delivery-limit", v),
                ("x-queue-type", AMQPValue::LongString("quorum".into())),
            ]),
            WHAT,
        )
    };
    assert_eq!(
        quorum(AMQPValue::LongInt(5)).unwrap().delivery_limit,
        Some(5)
    );
    assert_eq!(
        quorum(AMQPValue::LongInt(-1)).unwrap_err().text,
        format!(
            "PRECONDITION_FAILED - invalid arg 'x-delivery-limit' for {WHAT}: {{value_negative,-1}}"
        )
    );
    // A classic queue refuses the key, whatever its value (RabbitMQ 3.10.8).
    for v in [AMQPValue::LongInt(5), AMQPValue::LongInt(-1)] {
        let err = QueueArguments::parse(table(&[("x-delivery-limit", v)]), WHAT).unwrap_err();
        assert_eq!(
            err.text,
            format!(
                "PRECONDITION_FAILED - invalid arg 'x-delivery-limit' for {WHAT} of queue type rabbit_classic_queue"
            )
        );
    }
}

#[test]
fn queue_mode_is_default_or_lazy() {
    assert_eq!(
        parse("x-queue-mode", text("default")).mode,
        QueueMode::Default
    );
    assert_eq!(parse("x-queue-mode", text("lazy")).mode, QueueMode::Lazy);
    assert_eq!(refusal("x-queue-mode", text("eager")), "invalid_queue_mode");
}

#[test]
fn queue_type_is_classic_or_quorum_as_rabbitmq_names_them() {
    assert_eq!(
        parse("x-queue-type", text("classic")).queue_type,
        QueueType::Classic
    );
    assert_eq!(
        parse("x-queue-type", text("quorum")).queue_type,
        QueueType::Quorum
    );
    assert_eq!(
        refusal("x-queue-type", text("QUORUM")),
        "\"unsupported queue type 'QUORUM'\""
    );
    assert_eq!(
        refusal("x-queue-type", AMQPValue::Boolean(true)),
        "{unacceptable_type,bool}"
    );
}

#[test]
fn a_quorum_queue_refuses_what_rabbitmq_refuses_for_it() {
    let quorum = |key: &str, v: AMQPValue| {
        QueueArguments::parse(table(&[("x-queue-type", text("quorum")), (key, v)]), WHAT)
            .map(|_| ())
            .map_err(|e| e.text)
    };
    for (key, v) in [
        ("x-max-priority", AMQPValue::LongInt(2)),
        ("x-queue-mode", text("lazy")),
        ("x-max-age", text("1D")),
        ("x-queue-version", AMQPValue::LongInt(2)),
    ] {
        assert_eq!(
            quorum(key, v),
            Err(format!(
                "PRECONDITION_FAILED - invalid arg '{key}' for {WHAT} of queue type rabbit_quorum_queue"
            ))
        );
    }
    for (key, v) in [
        ("x-delivery-limit", AMQPValue::LongInt(3)),
        ("x-overflow", text("reject-publish-dlx")),
        ("x-single-active-consumer", AMQPValue::Boolean(true)),
        ("x-message-ttl", AMQPValue::LongInt(1000)),
        ("x-note", text("kept")),
    ] {
        assert_eq!(quorum(key, v), Ok(()), "{key}");
    }
    // A bad value is reported before a refused key, as RabbitMQ does.
    let both = table(&[
        ("x-queue-type", text("quorum")),
        ("x-max-length", AMQPValue::LongInt(-1)),
        ("x-max-priority", AMQPValue::LongInt(5)),
    ]);
    let refused = QueueArguments::parse(both, WHAT).unwrap_err().text;
    assert!(refused.ends_with("{value_negative,-1}"), "{refused}");
}

#[test]
fn no_queue_type_is_equivalent_to_classic_and_to_nothing_else() {
    let classic = QueueArguments::parse(FieldTable::default(), WHAT).unwrap();
    let named = table(&[("x-queue-type", text("classic"))]);
    assert!(classic.check_equivalent(&named, WHAT).is_ok());
    let named_classic = QueueArguments::parse(named, WHAT).unwrap();
    assert!(
        named_classic
            .check_equivalent(&FieldTable::default(), WHAT)
            .is_ok()
    );
    let quorum = QueueArguments::parse(table(&[("x-queue-type", text("quorum"))]), WHAT).unwrap();
    assert_eq!(
        quorum
            .check_equivalent(&FieldTable::default(), WHAT)
            .unwrap_err()
            .text,
        format!(
            "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for {WHAT}: received none but current is the value 'quorum' of type 'longstr'"
        )
    );
}

#[test]
fn unknown_arguments_are_kept_and_ignored() {
    let declared = table(&[
        ("x-foo", AMQPValue::LongInt(-1)),
        ("x-max-length", AMQPValue::LongInt(3)),
    ]);
    let args = QueueArguments::parse(declared.clone(), WHAT).unwrap();
    assert_eq!(args.max_length, Some(3));
    assert_eq!(args.declared(), &declared);
}

#[test]
fn integer_widths_are_equivalent_and_values_are_compared() {
    let current = parse("x-max-length", AMQPValue::LongInt(10));
    assert!(
        current
            .check_equivalent(
                &table(&[("x-max-length", AMQPValue::LongLongInt(10))]),
                WHAT
            )
            .is_ok()
    );
    let err = current
        .check_equivalent(&table(&[("x-max-length", AMQPValue::LongInt(20))]), WHAT)
        .unwrap_err();
    assert_eq!(
        err.text,
        "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'q' in vhost '/': received '20' but current is '10'"
    );
}

#[test]
fn a_missing_argument_is_inequivalent_in_typed_words() {
    let current = parse("x-single-active-consumer", AMQPValue::Boolean(true));
    let err = current
        .check_equivalent(&FieldTable::default(), WHAT)
        .unwrap_err();
    assert_eq!(
        err.text,
        "PRECONDITION_FAILED - inequivalent arg 'x-single-active-consumer' for queue 'q' in vhost '/': received none but current is the value 'true' of type 'bool'"
    );
}

#[test]
fn arguments_rabbitmq_does_not_compare_are_ignored_on_redeclare() {
    let current = parse("x-foo", AMQPValue::LongInt(1));
    assert!(
        current
            .check_equivalent(&FieldTable::default(), WHAT)
            .is_ok()
    );
    // x-consumer-timeout and x-delivery-limit are not compared either (RabbitMQ 3.10).
    let current = parse("x-consumer-timeout", AMQPValue::LongInt(1000));
    assert!(
        current
            .check_equivalent(&FieldTable::default(), WHAT)
            .is_ok()
    );
}
