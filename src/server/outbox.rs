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
//! Confirms released by the store's writer thread would otherwise cost a wake-up of a runtime
//! worker each (the writer task runs there); on a plain TCP connection [`Outbox::push_now`]
//! writes them from the calling thread instead, when the writer task is idle and the socket
//! takes them whole. Ordering holds because both paths write only under the buffer's lock or
//! while the writer task owns the bytes it swapped out (`Buffered::writing`).
//!
//! A large message body is not copied in: [`Frames::share`] queues the body's own `Bytes` after
//! the frames written so far, and the writer task hands the pieces to the socket in one vectored
//! write. A transient message's body is then copied at most once on its way through the broker
//! (when it arrived in several frames).
//!
//! This file owns buffering and writing, not framing.

use std::collections::VecDeque;
use std::io::{IoSlice, Write};
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::os::fd::{FromRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

/// Above this many pending bytes, deliveries wait for the writer.
const HIGH_WATER: usize = 1 << 20;
/// Above this many pending bytes, the connection stops reading (and so replying to) its peer.
const READ_LIMIT: usize = 4 << 20;
/// A write buffer that grew past this (a huge message) is not kept for reuse.
const KEEP_CAPACITY: usize = 4 << 20;

/// Pieces of a vectored write at most.
const MAX_SLICES: usize = 64;

#[derive(Default)]
struct Buffered {
    /// What goes out first: frames sealed before a shared body, and shared bodies, in order.
    sealed: VecDeque<Bytes>,
    sealed_len: usize,
    /// What goes out after `sealed`.
    bytes: BytesMut,
    /// The writer task took bytes out and has not finished writing them: nobody else writes.
    writing: bool,
    /// A plain TCP connection's socket, for [`Outbox::push_now`]: its descriptor, borrowed
    /// from the writer task's write half, which keeps it open. [`drain`] lends it and takes
    /// it back (under this lock) before the write half can be dropped; `close` and failures
    /// take it back too. Never closed through here.
    socket: Option<DirectSocket>,
}

/// A socket descriptor someone else owns, written to as a `TcpStream` that is never dropped.
struct DirectSocket(ManuallyDrop<std::net::TcpStream>);

impl DirectSocket {
    /// # Safety
    /// `fd` must be an open TCP socket that stays open until this value is dropped.
    unsafe fn borrow(fd: RawFd) -> Self {
        // SAFETY: the caller keeps `fd` open for this value's life; ManuallyDrop keeps it
        // from being closed here.
        DirectSocket(ManuallyDrop::new(unsafe {
            std::net::TcpStream::from_raw_fd(fd)
        }))
    }
}

impl Buffered {
    fn len(&self) -> usize {
        self.sealed_len + self.bytes.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn frames(&mut self) -> Frames<'_> {
        Frames {
            bytes: &mut self.bytes,
            sealed: &mut self.sealed,
            sealed_len: &mut self.sealed_len,
        }
    }
}

/// Where frames are written: a byte buffer (through `Deref`), into which a large body can be
/// shared instead of copied.
pub struct Frames<'a> {
    bytes: &'a mut BytesMut,
    sealed: &'a mut VecDeque<Bytes>,
    sealed_len: &'a mut usize,
}

impl Frames<'_> {
    /// Queues `piece` after everything written so far, without copying it.
    pub fn share(&mut self, piece: Bytes) {
        if piece.is_empty() {
            return;
        }
        if !self.bytes.is_empty() {
            let written = self.bytes.split().freeze();
            *self.sealed_len += written.len();
            self.sealed.push_back(written);
        }
        *self.sealed_len += piece.len();
        self.sealed.push_back(piece);
    }
}

impl Deref for Frames<'_> {
    type Target = BytesMut;
    fn deref(&self) -> &BytesMut {
        self.bytes
    }
}

impl DerefMut for Frames<'_> {
    fn deref_mut(&mut self) -> &mut BytesMut {
        self.bytes
    }
}

#[derive(Default)]
pub struct Outbox {
    buf: Mutex<Buffered>,
    /// `buf.len()` as of the last change, readable without the lock.
    pending: AtomicUsize,
    wake: Notify,
    closed: AtomicBool,
    /// A delivery was refused because the buffer was full.
    refused: AtomicBool,
    /// Bytes handed to the socket so far (heartbeat logic: did we send anything lately?).
    written: AtomicU64,
    /// Write calls that sent them (the management API's `send_cnt`).
    writes: AtomicU64,
    /// The writer drained the buffer (waking a connection that stopped reading).
    drained: Notify,
    /// The socket write failed or stalled past the write timeout: the connection is over.
    failed: AtomicBool,
    failed_notify: Notify,
}

impl Outbox {
    /// Lets [`Outbox::push_now`] write to the socket `fd`.
    ///
    /// # Safety
    /// `fd` must stay open until [`Outbox::stop_writing_directly`] (or `close`) returns.
    unsafe fn write_directly_to(&self, fd: RawFd) {
        if !self.closed.load(Ordering::Relaxed) {
            // SAFETY: the caller keeps `fd` open until it takes it back.
            self.buf.lock().socket = Some(unsafe { DirectSocket::borrow(fd) });
        }
    }

    /// Takes back the socket lent by `write_directly_to`: no write through it starts after
    /// this returns, and none is running (they run under the same lock).
    fn stop_writing_directly(&self) {
        self.buf.lock().socket = None;
    }

    /// Appends frames unconditionally (replies, errors, confirms).
    pub fn push(&self, write: impl FnOnce(&mut BytesMut)) {
        self.push_frames(|frames| write(frames));
    }

    /// Like [`Outbox::push`], for frames that may share a body ([`Frames::share`]).
    pub fn push_frames(&self, write: impl FnOnce(&mut Frames)) {
        let mut buf = self.buf.lock();
        let was_empty = buf.is_empty();
        write(&mut buf.frames());
        self.pending.store(buf.len(), Ordering::Relaxed);
        drop(buf);
        self.wake_writer(was_empty);
    }

    /// Like [`Outbox::push`], for a caller off the runtime (the store's writer thread): if
    /// nothing else is waiting to go out and the writer task is idle, the frames are written
    /// to the socket here (one non-blocking write, no runtime worker woken); whatever the
    /// socket does not take is left to the writer task as usual.
    pub fn push_now(&self, write: impl FnOnce(&mut BytesMut)) {
        let mut buf = self.buf.lock();
        let was_empty = buf.is_empty();
        write(&mut buf.bytes);
        let Buffered {
            bytes,
            writing,
            socket,
            ..
        } = &mut *buf;
        if was_empty
            && !*writing
            && !self.closed.load(Ordering::Relaxed)
            && let Some(socket) = socket
        {
            // The descriptor is non-blocking (the runtime set it so): a full socket buffer is
            // `WouldBlock`, and any other error is the writer task's to meet and report.
            if let Ok(n) = (&*socket.0).write(bytes) {
                bytes.advance(n);
                self.written.fetch_add(n as u64, Ordering::Relaxed);
                self.writes.fetch_add(1, Ordering::Relaxed);
            }
        }
        let pending = buf.len();
        self.pending.store(pending, Ordering::Relaxed);
        drop(buf);
        if pending > 0 {
            self.wake_writer(was_empty);
        }
    }

    /// Appends frames unless the buffer is over its high-water mark or closed.
    pub fn try_push(&self, write: impl FnOnce(&mut Frames)) -> bool {
        let mut buf = self.buf.lock();
        if buf.len() >= HIGH_WATER || self.closed.load(Ordering::Relaxed) {
            self.refused.store(true, Ordering::Relaxed);
            return false;
        }
        let was_empty = buf.is_empty();
        write(&mut buf.frames());
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
        self.buf.lock().socket = None;
        self.wake.notify_one();
    }

    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Writes so far (each a batch of frames) and bytes waiting for the writer task.
    pub fn writes_and_pending(&self) -> (u64, u64) {
        (
            self.writes.load(Ordering::Relaxed),
            self.pending.load(Ordering::Relaxed) as u64,
        )
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
        self.buf.lock().socket = None;
        self.failed.store(true, Ordering::Release);
        self.failed_notify.notify_waiters();
        self.drained.notify_waiters();
    }
}

/// The writer task's loop: drains `outbox` into `socket` until the outbox is closed. `resume`
/// runs after a drain that follows a refused delivery. A write that makes no progress for
/// `write_timeout` ends the connection (the peer stopped reading). `direct`: `socket`'s own
/// descriptor (plain TCP), lent to [`Outbox::push_now`] while this runs.
pub async fn drain(
    outbox: &Outbox,
    mut socket: impl AsyncWrite + Unpin,
    direct: Option<RawFd>,
    write_timeout: Duration,
    resume: impl Fn(),
) {
    /// Takes the descriptor back when `drain` ends or is dropped, before `socket` (a
    /// parameter, dropped after the locals) can close it.
    struct Lent<'a>(&'a Outbox);
    impl Drop for Lent<'_> {
        fn drop(&mut self) {
            self.0.stop_writing_directly();
        }
    }
    let _lent = direct.map(|fd| {
        // SAFETY: `fd` is `socket`'s descriptor, open while `socket` lives; `_lent` takes it
        // back before `socket` is dropped (locals drop before parameters).
        unsafe { outbox.write_directly_to(fd) };
        Lent(outbox)
    });
    // Both buffers grow to what the connection sends (an idle one's stay small).
    let mut spare = BytesMut::new();
    let mut sealed = VecDeque::new();
    loop {
        let closed = outbox.closed.load(Ordering::Relaxed);
        let len = {
            let mut buf = outbox.buf.lock();
            let len = buf.len();
            std::mem::swap(&mut buf.bytes, &mut spare);
            std::mem::swap(&mut buf.sealed, &mut sealed);
            buf.sealed_len = 0;
            buf.writing = len > 0;
            outbox.pending.store(0, Ordering::Relaxed);
            len as u64
        };
        if len == 0 {
            if closed || outbox.failed.load(Ordering::Acquire) {
                break;
            }
            outbox.drained.notify_waiters();
            outbox.wake.notified().await;
            continue;
        }
        if let Err(e) = write_all(&mut socket, &mut sealed, &spare, write_timeout).await {
            tracing::debug!("write failed: {e}");
            outbox.mark_failed();
            return;
        }
        outbox.written.fetch_add(len, Ordering::Relaxed);
        outbox.writes.fetch_add(1, Ordering::Relaxed);
        outbox.drained.notify_waiters();
        spare.clear();
        if spare.capacity() > KEEP_CAPACITY {
            spare = BytesMut::new();
        }
        if outbox.refused.swap(false, Ordering::Relaxed) {
            resume();
        }
    }
    let _ = tokio::time::timeout(write_timeout, socket.shutdown()).await;
}

/// Writes `pieces` in order, then `tail`, with vectored writes (one slice when there are no
/// pieces), failing when one write call makes no progress within `timeout`. `pieces` is empty
/// afterwards.
async fn write_all(
    socket: &mut (impl AsyncWrite + Unpin),
    pieces: &mut VecDeque<Bytes>,
    tail: &[u8],
    timeout: Duration,
) -> std::io::Result<()> {
    let mut tail_written = 0;
    loop {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let mut count = 0;
        for piece in pieces.iter().take(MAX_SLICES - 1) {
            slices[count] = IoSlice::new(piece);
            count += 1;
        }
        // The tail goes after the last piece: only in a call that holds them all.
        if count == pieces.len() && tail_written < tail.len() {
            slices[count] = IoSlice::new(&tail[tail_written..]);
            count += 1;
        }
        if count == 0 {
            break;
        }
        let mut n =
            match tokio::time::timeout(timeout, socket.write_vectored(&slices[..count])).await {
                Ok(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    tracing::warn!(
                        "closing connection: the peer has read nothing for {} s",
                        timeout.as_secs()
                    );
                    return Err(std::io::ErrorKind::TimedOut.into());
                }
            };
        while n > 0 {
            let Some(front) = pieces.front_mut() else {
                tail_written += n;
                break;
            };
            let step = n.min(front.len());
            front.advance(step);
            n -= step;
            if front.is_empty() {
                pieces.pop_front();
            }
        }
    }
    tokio::time::timeout(timeout, socket.flush())
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::sync::Arc;

    use tokio::io::AsyncReadExt;

    use super::*;

    /// A connected pair over loopback: the broker's side split as the listener splits it, its
    /// descriptor lent to the outbox by the writer task, and the peer's side.
    async fn connected(
        outbox: &Arc<Outbox>,
    ) -> (tokio::task::JoinHandle<()>, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
        let (peer, accepted) = tokio::join!(peer, listener.accept());
        let (socket, _) = accepted.unwrap();
        let fd = socket.as_raw_fd();
        let (read, write) = socket.into_split();
        let writer = {
            let outbox = outbox.clone();
            tokio::spawn(async move {
                let _kept_open = read;
                drain(&outbox, write, Some(fd), Duration::from_secs(5), || {}).await;
            })
        };
        // The writer task lends the socket to the outbox as it starts.
        while outbox.buf.lock().socket.is_none() {
            tokio::task::yield_now().await;
        }
        (writer, peer.unwrap())
    }

    fn numbered(n: u32) -> impl FnOnce(&mut BytesMut) {
        move |out| {
            out.extend_from_slice(&n.to_be_bytes());
            out.extend_from_slice(&[0xAB; 996]);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shared_bodies_go_out_whole_between_the_frames_around_them() {
        let outbox = Arc::new(Outbox::default());
        let (writer, mut peer) = connected(&outbox).await;
        // Bodies of ~1 MB each, shared, between numbered frames written before and after them,
        // from deliveries and from pushes (confirms) interleaved.
        const ROUNDS: u32 = 100; // more pieces than one vectored write takes
        let body = Bytes::from((0..1 << 20).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
        for n in 0..ROUNDS {
            let piece = body.slice(n as usize..);
            outbox.push_frames(|out| {
                numbered(n)(out);
                out.share(piece);
                out.extend_from_slice(b"end");
            });
            outbox.push_now(numbered(1000 + n));
        }
        let mut frame = [0u8; 1000];
        for n in 0..ROUNDS {
            peer.read_exact(&mut frame).await.unwrap();
            assert_eq!(u32::from_be_bytes(frame[..4].try_into().unwrap()), n);
            let mut got = vec![0u8; body.len() - n as usize];
            peer.read_exact(&mut got).await.unwrap();
            assert!(got[..] == body[n as usize..], "body {n} differs");
            let mut end = [0u8; 3];
            peer.read_exact(&mut end).await.unwrap();
            assert_eq!(&end, b"end");
            peer.read_exact(&mut frame).await.unwrap();
            assert_eq!(u32::from_be_bytes(frame[..4].try_into().unwrap()), 1000 + n);
        }
        outbox.close();
        writer.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn frames_written_now_and_by_the_writer_task_arrive_whole_and_in_order() {
        let outbox = Arc::new(Outbox::default());
        let (writer, mut peer) = connected(&outbox).await;
        const FRAMES: u32 = 60_000;
        // 60 MB, pushed in bursts while the peer reads: direct writes meet a socket that is
        // sometimes full (they write part, or nothing, and the writer task takes over) and a
        // writer task that is sometimes busy; pushes from elsewhere interleave with them.
        let pusher = {
            let outbox = outbox.clone();
            std::thread::spawn(move || {
                for n in 0..FRAMES {
                    if n % 3 == 0 {
                        outbox.push(numbered(n));
                    } else {
                        outbox.push_now(numbered(n));
                    }
                    if n % 64 == 0 {
                        std::thread::sleep(Duration::from_micros(50));
                    }
                }
            })
        };
        let mut frame = [0u8; 1000];
        for expected in 0..FRAMES {
            peer.read_exact(&mut frame).await.unwrap();
            assert_eq!(u32::from_be_bytes(frame[..4].try_into().unwrap()), expected);
            assert!(
                frame[4..].iter().all(|&b| b == 0xAB),
                "frame {expected} torn"
            );
        }
        pusher.join().unwrap();
        assert_eq!(outbox.written(), u64::from(FRAMES) * 1000);
        // Closing ends the connection: the duplicate descriptor does not keep it open.
        outbox.close();
        writer.await.unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), peer.read_to_end(&mut rest));
        assert_eq!(read.await.expect("the peer sees the end").unwrap(), 0);
    }

    #[tokio::test]
    async fn with_the_peer_reading_a_confirm_goes_out_on_the_callers_thread() {
        let outbox = Arc::new(Outbox::default());
        let (writer, mut peer) = connected(&outbox).await;
        // The writer task is idle, nothing is buffered: written here, nothing left for the task.
        outbox.push_now(numbered(7));
        assert_eq!(outbox.pending.load(Ordering::Relaxed), 0);
        assert_eq!(outbox.written(), 1000);
        let mut frame = [0u8; 1000];
        peer.read_exact(&mut frame).await.unwrap();
        assert_eq!(&frame[..4], &7u32.to_be_bytes());
        outbox.close();
        writer.await.unwrap();
    }
}
