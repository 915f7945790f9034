//! A connection's outbound byte buffer and the task that drains it to the socket.
//!
//! Anyone may append frames (the connection task for replies, queues for deliveries); the writer
//! task swaps the whole buffer out and writes it with as few syscalls as it can, so many frames
//! go out per write. When the buffer is above its high-water mark, deliveries are refused (the
//! queue keeps the message for another consumer) and the outbox remembers it; once the writer
//! has drained it, it asks the connection to resume those deliveries.
//!
//! Replies cannot be refused, so the buffer is bounded from the other side: the connection task
//! stops decoding the peer's frames while [`Outbox::over_read_limit`] (a peer that sends requests
//! but never reads the answers gets no more answers, and no more of its bytes are read). A peer
//! that reads nothing at all is cut off once a write has made no progress for the write
//! timeout: [`Outbox::failed`] tells the connection task to end the connection.
//!
//! This file owns buffering and writing, not framing.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use parking_lot::Mutex;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

/// Above this many pending bytes, deliveries wait for the writer.
const HIGH_WATER: usize = 1 << 20;
/// Above this many pending bytes, the connection stops reading (and so replying to) its peer.
const READ_LIMIT: usize = 4 << 20;
/// A write buffer that grew past this (a huge message) is not kept for reuse.
const KEEP_CAPACITY: usize = 4 << 20;

#[derive(Default)]
pub struct Outbox {
    buf: Mutex<BytesMut>,
    /// `buf.len()` as of the last change, readable without the lock.
    pending: AtomicUsize,
    wake: Notify,
    closed: AtomicBool,
    /// A delivery was refused because the buffer was full.
    refused: AtomicBool,
    /// Bytes handed to the socket so far (heartbeat logic: did we send anything lately?).
    written: AtomicU64,
    /// The writer drained the buffer (waking a connection that stopped reading).
    drained: Notify,
    /// The socket write failed or stalled past the write timeout: the connection is over.
    failed: AtomicBool,
    failed_notify: Notify,
}

impl Outbox {
    /// Appends frames unconditionally (replies, errors, confirms).
    pub fn push(&self, write: impl FnOnce(&mut BytesMut)) {
        let mut buf = self.buf.lock();
        let was_empty = buf.is_empty();
        write(&mut buf);
        self.pending.store(buf.len(), Ordering::Relaxed);
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
        self.pending.store(buf.len(), Ordering::Relaxed);
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

    /// So much is waiting for the peer that the connection should stop reading from it.
    pub fn over_read_limit(&self) -> bool {
        self.pending.load(Ordering::Relaxed) > READ_LIMIT
    }

    /// Waits until the writer has taken the buffer (or failed).
    pub async fn wait_drained(&self) {
        let drained = self.drained.notified();
        tokio::pin!(drained);
        drained.as_mut().enable();
        if !self.over_read_limit() || self.failed.load(Ordering::Acquire) {
            return;
        }
        drained.await;
    }

    /// Resolves once the writer has given up on the socket (it failed or stalled).
    pub async fn failed(&self) {
        let failed = self.failed_notify.notified();
        tokio::pin!(failed);
        failed.as_mut().enable();
        if self.failed.load(Ordering::Acquire) {
            return;
        }
        failed.await;
    }

    fn mark_failed(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.failed.store(true, Ordering::Release);
        self.failed_notify.notify_waiters();
        self.drained.notify_waiters();
    }
}

/// The writer task's loop: drains `outbox` into `socket` until the outbox is closed. `resume`
/// runs after a drain that follows a refused delivery. A write that makes no progress for
/// `write_timeout` ends the connection (the peer stopped reading).
pub async fn drain(
    outbox: &Outbox,
    mut socket: impl AsyncWrite + Unpin,
    write_timeout: Duration,
    resume: impl Fn(),
) {
    let mut spare = BytesMut::with_capacity(64 * 1024);
    loop {
        let closed = outbox.closed.load(Ordering::Relaxed);
        {
            let mut buf = outbox.buf.lock();
            std::mem::swap(&mut *buf, &mut spare);
            outbox.pending.store(0, Ordering::Relaxed);
        }
        if spare.is_empty() {
            if closed || outbox.failed.load(Ordering::Acquire) {
                break;
            }
            outbox.drained.notify_waiters();
            outbox.wake.notified().await;
            continue;
        }
        let len = spare.len() as u64;
        if let Err(e) = write_with_progress(&mut socket, &spare, write_timeout).await {
            tracing::debug!("write failed: {e}");
            outbox.mark_failed();
            return;
        }
        outbox.written.fetch_add(len, Ordering::Relaxed);
        outbox.drained.notify_waiters();
        spare.clear();
        if spare.capacity() > KEEP_CAPACITY {
            spare = BytesMut::with_capacity(64 * 1024);
        }
        if outbox.refused.swap(false, Ordering::Relaxed) {
            resume();
        }
    }
    let _ = tokio::time::timeout(write_timeout, socket.shutdown()).await;
}

/// Writes all of `buf`, failing when one write call makes no progress within `timeout`.
async fn write_with_progress(
    socket: &mut (impl AsyncWrite + Unpin),
    buf: &[u8],
    timeout: Duration,
) -> std::io::Result<()> {
    let mut written = 0;
    while written < buf.len() {
        match tokio::time::timeout(timeout, socket.write(&buf[written..])).await {
            Ok(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(Ok(n)) => written += n,
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                tracing::warn!(
                    "closing connection: the peer has read nothing for {} s",
                    timeout.as_secs()
                );
                return Err(std::io::ErrorKind::TimedOut.into());
            }
        }
    }
    tokio::time::timeout(timeout, socket.flush())
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}
