//! Each kind of classic queue pages a backlog of a thousand messages (threshold 5) and drains it
//! in the order its consumers expect, half to a consumer and half to basic.get, with the counts
//! a passive declare reports on the way. A priority queue delivers highest priority first and
//! FIFO within a level, also when its in-memory front is all low priority and higher ones
//! arrive once the rest is paged.

use super::*;
use crate::common::*;

/// Messages per test.
const N: usize = 1000;

/// A queue of `shape` gets `N` messages, pages them, and hands them out in order.
async fn pages_and_drains(shape: &Shape) {
    let broker = paging_broker();
    let (conn, ch) = confirm_session(&broker).await;
    let q = shape.declare(&ch).await;
    let msgs = shape.messages(N);
    publish_to_queue(&ch, &q, &msgs).await;
    let mut checks = PagingChecks::new();
    checks.paged(&broker, &q, shape.ram_bound()).await;
    drain_in_order(&conn, &ch, &q, &shape.delivery_order(&msgs)).await;
    delete_queue(&ch, &q).await;
    checks.verify();
}

#[tokio::test]
async fn a_durable_queue_of_persistent_messages_pages_and_drains_in_order() {
    pages_and_drains(&PLAIN).await
}

#[tokio::test]
async fn a_dead_lettering_queue_pages_and_drains_in_order() {
    pages_and_drains(&DEAD_LETTERING).await
}

#[tokio::test]
async fn a_priority_queue_pages_each_level_and_drains_highest_priority_first() {
    pages_and_drains(&PRIORITIES).await
}

#[tokio::test]
async fn messages_with_an_expiration_page_and_drain_in_order() {
    pages_and_drains(&MESSAGE_EXPIRATION).await
}

#[tokio::test]
async fn a_queue_with_a_message_ttl_pages_and_drains_in_order() {
    pages_and_drains(&QUEUE_TTL).await
}

#[tokio::test]
async fn a_byte_limited_queue_pages_and_drains_in_order() {
    pages_and_drains(&BYTE_LIMITED).await
}

#[tokio::test]
async fn a_non_durable_queue_pages_transient_messages_and_drains_in_order() {
    pages_and_drains(&TRANSIENT).await
}

#[tokio::test]
async fn a_durable_queue_pages_transient_messages_and_drains_in_order() {
    pages_and_drains(&TRANSIENT_IN_DURABLE).await
}

/// The first messages (all priority 0) fill the in-memory part and page; priority 9 and 4
/// messages come after: they overtake the whole low-priority backlog, FIFO within each level.
#[tokio::test]
async fn higher_priorities_arriving_behind_a_paged_low_priority_backlog_come_first() {
    let broker = paging_broker();
    let (conn, ch) = confirm_session(&broker).await;
    let q = PRIORITIES.declare(&ch).await;
    let low = messages("low", 400, |_| persistent().with_priority(0));
    publish_to_queue(&ch, &q, &low).await;
    let mut checks = PagingChecks::new();
    // One level so far: the single-level bound.
    checks.paged(&broker, &q, PLAIN.ram_bound()).await;
    let high = messages("high", 300, |_| persistent().with_priority(9));
    let middle = messages("middle", 300, |_| persistent().with_priority(4));
    publish_to_queue(&ch, &q, &high).await;
    publish_to_queue(&ch, &q, &middle).await;
    checks.paged(&broker, &q, PRIORITIES.ram_bound()).await;
    let expected: Vec<String> = [&high, &middle, &low]
        .into_iter()
        .flat_map(|msgs| bodies_of(msgs))
        .collect();
    drain_in_order(&conn, &ch, &q, &expected).await;
    delete_queue(&ch, &q).await;
    checks.verify();
}

/// Priorities above `x-max-priority` count as the highest, and messages without one as 0, in a
/// paged backlog too.
#[tokio::test]
async fn out_of_range_and_missing_priorities_page_at_the_edge_levels() {
    let broker = paging_broker();
    let (conn, ch) = confirm_session(&broker).await;
    let q = PRIORITIES.declare(&ch).await;
    let msgs = messages("edge", 600, |i| match i % 3 {
        0 => persistent(),
        1 => persistent().with_priority(200),
        _ => persistent().with_priority(MAX_PRIORITY),
    });
    publish_to_queue(&ch, &q, &msgs).await;
    let mut checks = PagingChecks::new();
    checks.paged(&broker, &q, PRIORITIES.ram_bound()).await;
    drain_in_order(&conn, &ch, &q, &by_priority(&msgs)).await;
    delete_queue(&ch, &q).await;
    checks.verify();
}
