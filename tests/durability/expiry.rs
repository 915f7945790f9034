//! Deadlines across restarts: a recovered durable queue with `x-expires` gets its deadline
//! again, counted from the restart, and is deleted once unused for that long.

use std::time::Duration;

use amq_protocol::types::AMQPValue;

use crate::common::*;
use crate::support::*;

/// Long enough for a restart to finish before the old broker would delete the queue.
const EXPIRES_MS: i32 = 4000;

async fn recovered_queue_expires_when_unused(mut node: Node, stop: Stop) {
    let q = unique("dur-q-expires");
    {
        let (_conn, ch) = node.channel().await;
        let args = table(vec![("x-expires", AMQPValue::LongInt(EXPIRES_MS))]);
        declare_durable_queue_with(&ch, &q, args).await;
    }
    node.restart(stop);
    let conn = node.broker.connect().await;
    // (A passive declare is a use: the expiry counts from here.)
    assert!(
        queue_exists(&conn, &q).await,
        "{q} is gone right after the {stop:?} restart"
    );
    tokio::time::sleep(Duration::from_millis(EXPIRES_MS as u64 * 2)).await;
    assert!(
        !queue_exists(&conn, &q).await,
        "{q} is still there, unused for twice its x-expires after the {stop:?} restart"
    );
}
both_stops!(
    recovered_queue_expires_when_unused,
    recovered_queue_expires_when_unused_after_graceful_restart,
    recovered_queue_expires_when_unused_after_kill9
);
