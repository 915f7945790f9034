//! A connection's outbound byte buffer and the task that drains it to the socket.
//!
//! Anyone may append frames (the connection task for replies, queues for deliveries); the writer
//! task swaps the whole buffer out and writes it with one `write_all`, so many frames go out per
//! syscall. When the buffer is above its high-water mark, deliveries are refused (the queue keeps
//! the message) and the outbox remembers it; once the writer has drained it, it asks the
//! connection to resume those deliveries. This file owns buffering and writing, not framing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::BytesMut;
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;

/// Above this many pending bytes, deliveries wait for the writer.
const HIGH_WATER: usize = 1 << 20;
/// A write buffer that grew past this (a huge message) is not kept for reuse.
const KEEP_CAPACITY: usize = 4 << 20;

#[derive(Default)]
pub struct Outbox {
    buf: Mutex<BytesMut>,
    wake: Notify,
    closed: AtomicBool,
    /// A delivery was refused because the buffer was full.
    refused: AtomicBool,
    /// Bytes handed to the socket so far (heartbeat logic: did we send anything lately?).
    written: AtomicU64,
}

impl Outbox {
    /// Appends frames unconditionally (replies, errors, confirms).
    pub fn push(&self, write: impl FnOnce(&mut BytesMut)) {
        let mut buf = self.buf.lock();
        let was_empty = buf.is_empty();
        write(&mut buf);
        drop(buf);
        self.wake_writer(was_empty);
    }

    /// Appends frames unless the buffer is over its high-water mark or closed.
    pub fn try_push(&self, write: impl FnOnce(&mut BytesMut)) -> bool {
        let mut buf = self.buf.lock();
        if buf.len() >= HIGH_WATER || self.closed.load(Ordering::Relaxed) {
            self.refused.store(true, Ordering::Relaxed);
            return false;
        }
        let was_empty = buf.is_empty();
        write(&mut buf);
        drop(buf);
        self.wake_writer(was_empty);
        true
    }

    /// Only the push that makes the buffer non-empty wakes the writer: any later push before
    /// the writer swaps the buffer out rides on that wake-up (the writer takes everything at
    /// once), so a burst of deliveries costs one notification, not one each.
    fn wake_writer(&self, was_empty: bool) {
        if was_empty {
            self.wake.notify_one();
        }
    }

    /// No more frames: the writer flushes what is buffered and shuts the socket down.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }

    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

/// The writer task's loop: drains `outbox` into `socket` until the outbox is closed. `resume`
/// runs after a drain that follows a refused delivery.
pub async fn drain(outbox: &Outbox, mut socket: OwnedWriteHalf, resume: impl Fn()) {
    let mut spare = BytesMut::with_capacity(64 * 1024);
    loop {
        let closed = outbox.closed.load(Ordering::Relaxed);
        std::mem::swap(&mut *outbox.buf.lock(), &mut spare);
        if spare.is_empty() {
            if closed {
                break;
            }
            outbox.wake.notified().await;
            continue;
        }
        if let Err(e) = socket.write_all(&spare).await {
            tracing::debug!("write failed: {e}");
            outbox.closed.store(true, Ordering::Relaxed);
            break;
        }
        outbox
            .written
            .fetch_add(spare.len() as u64, Ordering::Relaxed);
        spare.clear();
        if spare.capacity() > KEEP_CAPACITY {
            spare = BytesMut::with_capacity(64 * 1024);
        }
        if outbox.refused.swap(false, Ordering::Relaxed) {
            resume();
        }
    }
    let _ = socket.shutdown().await;
}
