//! basic.*: publish (mandatory/immediate), consume/cancel, get, ack/nack/
//! reject, recover, qos, ordering, requeue on close, large bodies and
//! properties round-trip.

mod ack;
mod consume;
mod publish;
mod qos;
mod requeue;

use lapin::Channel;

use crate::common::*;

/// A named, non-exclusive queue (usable from other connections, and not
/// deleted when its consumers go away).
async fn shared_queue(ch: &Channel, prefix: &str) -> String {
    let q = unique(prefix);
    declare_queue(ch, &q).await;
    q
}
