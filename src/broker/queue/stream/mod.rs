//! Streams (`x-queue-type: stream`): an append-only log that consumers read from offsets of
//! their own. Publishing appends; consuming never removes; each consumer has a cursor; old
//! entries leave in whole segments by size or age (retention.rs).
//!
//! This file owns the log's bookkeeping under the queue's lock ([`StreamLog`]): the next
//! offset, the segments (offset ranges with their bytes and times), the recent entries kept
//! in memory (the tail), and the consumers' cursors. It does no I/O: delivery.rs reads older
//! entries from the store with the lock released; the store (store/stream_log.rs) keeps what
//! it is told. Where consumers start is offset.rs's.
//!
//! The tail holds the newest entries as `Arc<Message>`, so consumers that keep up never touch
//! the store. An entry leaves the tail only once it is in LMDB (the store's applied
//! operations reached it) and the tail is over its bounds, so an offset below the tail's start
//! can always be read from the store.
//!
//! An entry reaches consumers only once it is durable (the store's committed operations
//! reached it), as RabbitMQ's readers see only committed chunks: a crash could otherwise take
//! back an entry a consumer was given, and the next append would reuse its offset for another
//! message, one a consumer resuming after the offset it saw would never get.

pub mod arguments;
mod delivery;
#[cfg(test)]
mod delivery_tests;
pub mod offset;
pub mod retention;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::Arc;

use crate::broker::consumer::Consumer;
use crate::broker::message::Message;
use crate::store::{StreamRecovered, StreamSegment};

pub use offset::StreamStart;
pub use retention::Retention;

/// The tail keeps at least this many entries when they are durable and readable elsewhere…
const TAIL_MAX_ENTRIES: usize = 4096;
/// …and at most this many body bytes once they are.
const TAIL_MAX_BYTES: usize = 4 << 20;

/// One entry of the tail.
pub(crate) struct TailEntry {
    pub message: Arc<Message>,
    /// Append time, ms since the Unix epoch.
    pub timestamp: u64,
    /// The store operation that holds it (0: not stored); it may leave the tail once the
    /// store's applied operations reach this.
    pub op: u64,
}

/// Where one consumer is in the log.
pub(crate) struct Cursor {
    pub consumer: Arc<Consumer>,
    /// The next offset to deliver.
    pub next: u64,
    /// Entries appended before this time (ms since the epoch) are skipped: a consumer that
    /// asked to start at a time.
    pub not_before: u64,
    /// Entries read from the store for this consumer, not yet delivered.
    pub buffer: VecDeque<(u64, u64, Arc<Message>)>,
    /// A store read for this consumer is under way (the queue's lock is released for it).
    pub reading: bool,
}

/// What a stream holds, under its queue's lock.
pub(crate) struct StreamLog {
    /// The offset of the oldest entry still kept.
    pub first: u64,
    /// The offset the next append gets.
    pub next: u64,
    /// Oldest first; the last one is open (appends go there), the others closed.
    pub segments: VecDeque<StreamSegment>,
    /// Bytes (properties and bodies) of every entry kept.
    pub bytes: u64,
    /// The newest entries: offsets `tail_start .. next`.
    pub tail: VecDeque<TailEntry>,
    pub tail_start: u64,
    tail_bytes: usize,
    pub cursors: Vec<Cursor>,
    pub retention: Retention,
    /// Consumers wait for entries that are not durable yet, and the store will say when its
    /// next commit is done (delivery.rs): one such notification at a time.
    pub commit_wait: bool,
}

impl StreamLog {
    pub fn new(retention: Retention) -> Self {
        StreamLog {
            first: 0,
            next: 0,
            segments: VecDeque::new(),
            bytes: 0,
            tail: VecDeque::new(),
            tail_start: 0,
            tail_bytes: 0,
            cursors: Vec::new(),
            retention,
            commit_wait: false,
        }
    }

    /// What the store found after a restart: offsets go on from there; nothing is in memory.
    pub fn restore(&mut self, recovered: StreamRecovered) {
        self.segments = recovered.segments.into();
        self.first = self
            .segments
            .front()
            .map_or(recovered.next_offset, |s| s.first);
        self.next = recovered.next_offset;
        self.tail_start = self.next;
        self.bytes = self.segments.iter().map(|s| s.bytes).sum();
    }

    /// Entries kept (what the queue reports as its messages).
    pub fn len(&self) -> u64 {
        self.next - self.first
    }

    /// Appends an entry; returns its offset and, when the append closed the open segment, the
    /// closed segment (for the store's segment table).
    pub fn append(
        &mut self,
        message: Arc<Message>,
        timestamp: u64,
        op: u64,
    ) -> (u64, Option<StreamSegment>) {
        let offset = self.next;
        let size = entry_bytes(&message);
        let closed = match self.segments.back_mut() {
            Some(open) if open.bytes > 0 && open.bytes + size > self.retention.segment_bytes => {
                let closed = *open;
                self.segments.push_back(new_segment(offset, timestamp));
                Some(closed)
            }
            Some(_) => None,
            None => {
                self.segments.push_back(new_segment(offset, timestamp));
                None
            }
        };
        if let Some(open) = self.segments.back_mut() {
            open.last = offset;
            open.bytes += size;
            open.last_ts = open.last_ts.max(timestamp);
        }
        self.bytes += size;
        self.next += 1;
        self.tail_bytes += size as usize;
        self.tail.push_back(TailEntry {
            message,
            timestamp,
            op,
        });
        (offset, closed)
    }

    /// Lets durable, readable entries go from the front of the tail while it is over its
    /// bounds. `applied` is the store's last applied operation; `stored` says whether entries
    /// are in a store at all (without one, the tail is the log).
    pub fn shrink_tail(&mut self, applied: u64, stored: bool) {
        if !stored {
            return;
        }
        while self.tail.len() > TAIL_MAX_ENTRIES || self.tail_bytes > TAIL_MAX_BYTES {
            match self.tail.front() {
                Some(front) if front.op <= applied => {
                    self.tail_bytes -= entry_bytes(&front.message) as usize;
                    self.tail.pop_front();
                    self.tail_start += 1;
                }
                _ => break,
            }
        }
    }

    /// The tail's entry at `offset`, if it is there.
    pub fn in_tail(&self, offset: u64) -> Option<&TailEntry> {
        let i = offset.checked_sub(self.tail_start)?;
        self.tail.get(usize::try_from(i).ok()?)
    }

    /// Drops the oldest segments: everything before `before` is gone. Cursors behind it jump
    /// ahead (as RabbitMQ's readers of a deleted segment do), and the tail loses what it had
    /// of them.
    pub fn drop_before(&mut self, before: u64) {
        while self.segments.front().is_some_and(|s| s.last < before) {
            if let Some(s) = self.segments.pop_front() {
                self.bytes -= s.bytes;
            }
        }
        self.first = before;
        while self.tail_start < before {
            let Some(front) = self.tail.pop_front() else {
                self.tail_start = before;
                break;
            };
            self.tail_bytes -= entry_bytes(&front.message) as usize;
            self.tail_start += 1;
        }
        for cursor in &mut self.cursors {
            if cursor.next < before {
                cursor.next = before;
            }
            cursor.buffer.retain(|(offset, _, _)| *offset >= before);
        }
    }

    /// A consumer starts reading from where `start` says.
    pub fn add_cursor(&mut self, consumer: Arc<Consumer>, start: StreamStart) {
        let (next, not_before) = start.resolve(self);
        self.cursors.push(Cursor {
            consumer,
            next,
            not_before,
            buffer: VecDeque::new(),
            reading: false,
        });
    }

    pub fn cursor_of(&mut self, consumer: &Arc<Consumer>) -> Option<&mut Cursor> {
        self.cursors
            .iter_mut()
            .find(|c| Arc::ptr_eq(&c.consumer, consumer))
    }

    pub fn remove_cursor(&mut self, tag: &str, connection_id: u64) {
        self.cursors
            .retain(|c| !(c.consumer.tag == tag && c.consumer.connection_id == connection_id));
    }
}

fn new_segment(offset: u64, timestamp: u64) -> StreamSegment {
    StreamSegment {
        first: offset,
        last: offset,
        bytes: 0,
        first_ts: timestamp,
        last_ts: timestamp,
    }
}

/// What an entry counts for retention by size: its properties and body.
pub(crate) fn entry_bytes(message: &Message) -> u64 {
    (message.properties.raw().len() + message.body.len()) as u64
}

/// Now, in ms since the Unix epoch (streams keep wall-clock times: `x-stream-offset` may name
/// one).
pub fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
