//! What a queue does to its messages on its own, on a paged backlog as on one in memory:
//! messages expire on time with no consumer on the queue and reach its dead-letter queue in
//! order, once, as `expired`; `x-max-length` and `x-max-length-bytes` hold while the backlog is
//! paged, with drop-head keeping the newest messages (and dead-lettering the others as
//! `maxlen`) and reject-publish nacking what does not fit.

use std::time::Duration;

use amq_protocol::types::AMQPValue;
use lapin::Channel;

use super::*;
use crate::common::*;
use crate::support::*;

/// Messages per test.
const N: usize = 1000;
/// What the limited queues hold: their `x-max-length`, or `x-max-length-bytes` / [`BODY_LEN`].
const LIMIT: usize = 200;
/// The message TTL of the expiry tests.
const TTL_MS: i32 = 2000;

/// Where a message's TTL comes from.
#[derive(Clone, Copy)]
enum Ttl {
    Message,
    Queue,
}

/// `N` persistent messages expire in a paged durable queue nobody consumes from: it empties,
/// and its dead-letter queue gets every one, in order, dead once as `expired`.
async fn an_expired_backlog_is_dead_lettered_in_order(ttl: Ttl) {
    let broker = paging_broker();
    let (_conn, ch) = confirm_session(&broker).await;
    let (dlx, target) = dead_letter_target(&ch, "expiring").await;
    let mut args = vec![("x-dead-letter-exchange", long_str(&dlx))];
    let props = match ttl {
        Ttl::Message => persistent().with_expiration(TTL_MS.to_string().into()),
        Ttl::Queue => {
            args.push(("x-message-ttl", AMQPValue::LongInt(TTL_MS)));
            persistent()
        }
    };
    let q = unique("expiring");
    declare_durable_queue_with(&ch, &q, table(args)).await;
    let msgs = messages("expiring", N, |_| props.clone());
    publish_to_queue(&ch, &q, &msgs).await;
    let mut checks = PagingChecks::new();
    checks.paged(&broker, &q, PLAIN.ram_bound()).await;
    wait_message_count_within(&ch, &q, 0, Duration::from_secs(20)).await;
    wait_message_count(&ch, &target, N as u32).await;
    let got = get_all(&ch, &target).await;
    assert_dead_letters(&got, &bodies_of(&msgs), &q, "expired");
    remove(&ch, &[&q, &target], Some(&dlx)).await;
    checks.verify();
}

#[tokio::test]
async fn paged_messages_with_an_expiration_expire_into_the_dead_letter_queue_in_order() {
    an_expired_backlog_is_dead_lettered_in_order(Ttl::Message).await
}

#[tokio::test]
async fn paged_messages_under_a_queue_ttl_expire_into_the_dead_letter_queue_in_order() {
    an_expired_backlog_is_dead_lettered_in_order(Ttl::Queue).await
}

/// Which limit a queue has: `LIMIT` messages, or `LIMIT` bodies' worth of bytes.
#[derive(Clone, Copy)]
enum Limit {
    Length,
    Bytes,
}

/// A durable queue with `limit`, the `overflow` strategy and, with `dead_letter`, a dead-letter
/// exchange: its name and the dead-letter queue's (and exchange's).
async fn limited_queue(
    ch: &Channel,
    limit: Limit,
    overflow: &str,
    dead_letter: bool,
) -> (String, Option<(String, String)>) {
    let mut args = vec![
        match limit {
            Limit::Length => ("x-max-length", AMQPValue::LongInt(LIMIT as i32)),
            Limit::Bytes => (
                "x-max-length-bytes",
                AMQPValue::LongInt((LIMIT * BODY_LEN) as i32),
            ),
        },
        ("x-overflow", long_str(overflow)),
    ];
    let target = if dead_letter {
        let (dlx, target) = dead_letter_target(ch, "limited").await;
        args.push(("x-dead-letter-exchange", long_str(&dlx)));
        Some((target, dlx))
    } else {
        None
    };
    let q = unique("limited");
    declare_durable_queue_with(ch, &q, table(args)).await;
    (q, target)
}

/// Deletes these queues and exchange (the broker may be a shared RabbitMQ).
async fn remove(ch: &Channel, queues: &[&str], exchange: Option<&str>) {
    for q in queues {
        delete_queue(ch, q).await;
    }
    if let Some(x) = exchange {
        delete_exchange(ch, x).await;
    }
}

/// `N` messages into a queue holding `LIMIT`: after every chunk it holds as many as were
/// published, up to the limit; the newest stay, in order; the oldest are dropped, or
/// dead-lettered as `maxlen` in order.
async fn drop_head_keeps_the_newest(limit: Limit, dead_letter: bool) {
    let broker = paging_broker();
    let (conn, ch) = confirm_session(&broker).await;
    let (q, target) = limited_queue(&ch, limit, "drop-head", dead_letter).await;
    let msgs = messages("m", N, |_| persistent());
    for (i, chunk) in msgs.chunks(CHUNK).enumerate() {
        publish_to_queue(&ch, &q, chunk).await;
        let published = (i * CHUNK + chunk.len()).min(N);
        let count = message_count(&ch, &q).await as usize;
        assert_eq!(count, published.min(LIMIT), "after {published} published");
    }
    let mut checks = PagingChecks::new();
    checks.paged(&broker, &q, PLAIN.ram_bound()).await;
    checks
        .message_bytes(&broker, &q, (LIMIT * BODY_LEN) as u64)
        .await;
    let (dropped, kept) = msgs.split_at(N - LIMIT);
    drain_in_order(&conn, &ch, &q, &bodies_of(kept)).await;
    match target {
        Some((target, dlx)) => {
            wait_message_count(&ch, &target, dropped.len() as u32).await;
            let got = get_all(&ch, &target).await;
            assert_dead_letters(&got, &bodies_of(dropped), &q, "maxlen");
            remove(&ch, &[&q, &target], Some(&dlx)).await;
        }
        None => remove(&ch, &[&q], None).await,
    }
    checks.verify();
}

#[tokio::test]
async fn max_length_bytes_drop_head_on_a_paged_queue_dead_letters_the_oldest_as_maxlen() {
    drop_head_keeps_the_newest(Limit::Bytes, true).await
}

#[tokio::test]
async fn max_length_bytes_drop_head_on_a_paged_queue_keeps_the_newest() {
    drop_head_keeps_the_newest(Limit::Bytes, false).await
}

#[tokio::test]
async fn max_length_drop_head_on_a_paged_queue_dead_letters_the_oldest_as_maxlen() {
    drop_head_keeps_the_newest(Limit::Length, true).await
}

#[tokio::test]
async fn max_length_drop_head_on_a_paged_queue_keeps_the_newest() {
    drop_head_keeps_the_newest(Limit::Length, false).await
}

/// `N` messages into a reject-publish queue holding `LIMIT`: the first `LIMIT` are acked and
/// kept, the rest nacked (and not dead-lettered); once some are consumed, there is room again.
async fn reject_publish_nacks_what_does_not_fit(limit: Limit) {
    let broker = paging_broker();
    let (conn, ch) = confirm_session(&broker).await;
    let (q, target) = limited_queue(&ch, limit, "reject-publish", true).await;
    let msgs = messages("m", N, |_| persistent());
    let acked = publish_chunked(&ch, "", &q, &msgs).await;
    assert_eq!(acked.iter().position(|a| !a), Some(LIMIT), "first nack");
    assert!(
        acked[LIMIT..].iter().all(|a| !a),
        "a nacked message later acked"
    );
    let mut checks = PagingChecks::new();
    checks.paged(&broker, &q, PLAIN.ram_bound()).await;
    checks
        .message_bytes(&broker, &q, (LIMIT * BODY_LEN) as u64)
        .await;
    // The oldest 20 go (from the in-memory front, and the page behind it).
    let mut taken = Vec::new();
    for _ in 0..20 {
        taken.push(String::from_utf8(get_body(&ch, &q).await.expect("a message")).unwrap());
    }
    assert_same_order(&taken, &bodies_of(&msgs[..20]), "the first 20");
    let more = messages("more", 30, |_| persistent());
    let acked = publish_chunked(&ch, "", &q, &more).await;
    let expected_acks: Vec<bool> = (0..30).map(|i| i < 20).collect();
    assert_eq!(acked, expected_acks, "room for 20 again");
    let expected: Vec<String> = msgs[20..LIMIT]
        .iter()
        .chain(&more[..20])
        .map(|m| m.body.clone())
        .collect();
    drain_in_order(&conn, &ch, &q, &expected).await;
    let (target, dlx) = target.expect("a dead-letter queue");
    assert_eq!(
        message_count(&ch, &target).await,
        0,
        "nacked, not dead-lettered"
    );
    remove(&ch, &[&q, &target], Some(&dlx)).await;
    checks.verify();
}

#[tokio::test]
async fn max_length_reject_publish_on_a_paged_queue_nacks_what_does_not_fit() {
    reject_publish_nacks_what_does_not_fit(Limit::Length).await
}

#[tokio::test]
async fn max_length_bytes_reject_publish_on_a_paged_queue_nacks_what_does_not_fit() {
    reject_publish_nacks_what_does_not_fit(Limit::Bytes).await
}
