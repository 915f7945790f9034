//! A stream's side of `Queue`: appending on publish, and delivering to each consumer from its
//! own cursor — from the tail in memory while it keeps up (entries the store has committed
//! only; the store says when it commits the ones a consumer waits for), from the store (read
//! with the queue's lock released, one consumer's batch at a time) while it is behind. Acks,
//! rejects and requeues only give the consumer its credit back: nothing leaves a stream by
//! being consumed, and nothing is redelivered.

use std::sync::{Arc, Weak};

use parking_lot::MutexGuard;

use super::{Cursor, StreamLog, epoch_ms};
use crate::broker::consumer::Consumer;
use crate::broker::durable::decode_stored;
use crate::broker::message::{Message, QueuedMessage};
use crate::broker::message_counts::MessageCounts;
use crate::broker::queue::delivered_headers::stamp_offset;
use crate::broker::queue::queue::{Queue, QueueState};
use crate::store::{CommitListener, MessageRecord};

/// Entries one store read brings for one consumer, at most…
const READ_ENTRIES: usize = 512;
/// …and about this many bytes.
const READ_BYTES: usize = 1 << 20;

/// A store read one consumer needs: entries from `from` on.
struct PendingRead {
    consumer: Arc<Consumer>,
    from: u64,
    count: usize,
}

/// What a store read brought: offset, append time, message (`None` if it was damaged).
type ReadEntry = (u64, u64, Option<Arc<Message>>);

impl Queue {
    /// Appends `message` to the stream (the store first, so that a confirm waits for it) and
    /// delivers to the consumers that can take it.
    pub(in crate::broker::queue) fn stream_publish(
        self: &Arc<Self>,
        st: &mut MutexGuard<'_, QueueState>,
        message: Arc<Message>,
    ) {
        let Some(log) = st.stream.as_deref_mut() else {
            return;
        };
        let timestamp = epoch_ms();
        let message = stamp_offset(&message, log.next);
        let op = self.persistence.as_ref().map_or(0, |p| {
            let record = MessageRecord {
                exchange: message.exchange.clone(),
                routing_key: message.routing_key.clone(),
                properties: message.properties.raw().clone(),
                body: message.body.clone(),
            };
            p.store
                .stream_append(p.queue_id, log.next, timestamp, record)
        });
        let (_, closed) = log.append(message, timestamp, op);
        if let Some(segment) = closed {
            if let Some(p) = &self.persistence {
                p.store.stream_segment_closed(p.queue_id, segment);
            }
            self.apply_retention(log, timestamp);
        }
        match &self.persistence {
            Some(p) => log.shrink_tail(p.store.applied_ops(), true),
            None => log.shrink_tail(0, false),
        }
        MessageCounts::bump(&self.counts.publish, 1);
        self.stream_dispatch(st);
    }

    /// What the store found of this stream after a restart.
    pub fn restore_stream(&self, recovered: crate::store::StreamRecovered) {
        if let Some(log) = self.state.lock().stream.as_deref_mut() {
            log.restore(recovered);
        }
    }

    /// Drops the segments retention no longer keeps (`now`: ms since the epoch); the store
    /// deletes them in the background.
    pub(in crate::broker::queue) fn apply_retention(&self, log: &mut StreamLog, now: u64) {
        let Some(before) = log.retention.trim_point(&log.segments, log.bytes, now) else {
            return;
        };
        log.drop_before(before);
        if let Some(p) = &self.persistence {
            p.store.stream_trim(p.queue_id, before);
        }
        tracing::debug!(queue = %self.name, first = before, "stream retention dropped segments");
    }

    /// Delivers what each consumer can take; reads the store (lock released) for consumers
    /// behind the tail, one batch at a time, until none can take more.
    pub(in crate::broker::queue) fn stream_dispatch(
        self: &Arc<Self>,
        st: &mut MutexGuard<'_, QueueState>,
    ) {
        loop {
            let Some(read) = self.stream_deliver_locked(st) else {
                return;
            };
            let entries = MutexGuard::unlocked(st, || self.read_entries(&read));
            self.stream_end_read(st, &read, entries);
        }
    }

    /// Delivers from buffers and the tail; returns the first store read a consumer needs.
    fn stream_deliver_locked(self: &Arc<Self>, st: &mut QueueState) -> Option<PendingRead> {
        let log = st.stream.as_deref_mut()?;
        // Without a store the tail is the log, and everything in it is deliverable.
        let committed = self
            .persistence
            .as_ref()
            .map_or(u64::MAX, |p| p.store.committed_ops());
        let mut cursors = std::mem::take(&mut log.cursors);
        let mut read = None;
        let mut waits_for_commit = false;
        for cursor in &mut cursors {
            waits_for_commit |= self.deliver_to(log, cursor, committed, &mut read);
        }
        log.cursors = cursors;
        if waits_for_commit && !log.commit_wait {
            log.commit_wait = true;
            self.notify_stream_commit();
        }
        read
    }

    /// Asks the store to say when what it has been sent so far is durable; the consumers then
    /// get what they waited for ([`CommitWaiter`]).
    fn notify_stream_commit(self: &Arc<Self>) {
        let Some(p) = &self.persistence else {
            return;
        };
        let waiter = CommitWaiter {
            queue: Arc::downgrade(self),
            runtime: tokio::runtime::Handle::try_current().ok(),
        };
        p.store.notify_when_committed(Arc::new(waiter), 0);
    }

    /// The store's commit a stream's consumers waited for is over (or failed: then they wait
    /// for the retry): deliver what is durable now.
    fn stream_committed(self: &Arc<Self>) {
        let mut st = self.state.lock();
        let Some(log) = st.stream.as_deref_mut() else {
            return;
        };
        log.commit_wait = false;
        self.stream_dispatch(&mut st);
        self.finish(st);
    }

    /// Feeds one consumer while it has credit, tail entries only once the store's committed
    /// operations reached them (`committed`); returns whether it stopped at an entry that is not
    /// durable yet.
    fn deliver_to(
        self: &Arc<Self>,
        log: &StreamLog,
        cursor: &mut Cursor,
        committed: u64,
        read: &mut Option<PendingRead>,
    ) -> bool {
        let consumer = cursor.consumer.clone();
        while consumer.has_credit() {
            let (offset, timestamp, message) = match cursor.buffer.pop_front() {
                Some(entry) => entry,
                None if cursor.next >= log.next => break,
                None => match log.in_tail(cursor.next) {
                    Some(entry) if entry.op > committed => return true,
                    Some(entry) => {
                        cursor.next += 1;
                        (cursor.next - 1, entry.timestamp, entry.message.clone())
                    }
                    None => {
                        if !cursor.reading && read.is_none() {
                            cursor.reading = true;
                            *read = Some(PendingRead {
                                consumer: consumer.clone(),
                                from: cursor.next,
                                count: read_count(&consumer),
                            });
                        }
                        break;
                    }
                },
            };
            if timestamp < cursor.not_before {
                continue;
            }
            consumer.record_delivery();
            let queued = QueuedMessage::new(offset, message, false);
            match consumer.channel.try_deliver(&consumer, self, queued) {
                Ok(()) => self.counts.bump_delivery(false, consumer.no_ack, false),
                Err(back) => {
                    consumer.settle(1);
                    cursor.buffer.push_front((offset, timestamp, back.message));
                    break;
                }
            }
        }
        false
    }

    /// Reads a batch for one consumer (no lock held).
    fn read_entries(&self, read: &PendingRead) -> Vec<ReadEntry> {
        let Some(p) = &self.persistence else {
            return Vec::new();
        };
        let mut entries = Vec::with_capacity(read.count.min(READ_ENTRIES));
        let mut exchange_name = None;
        let result = p.store.read_stream(
            p.queue_id,
            read.from,
            read.count,
            READ_BYTES,
            |offset, entry| {
                let (timestamp, message) = match entry {
                    Ok((timestamp, stored)) => (
                        timestamp,
                        decode_stored(offset, Ok(stored), &mut exchange_name, None),
                    ),
                    Err(e) => {
                        tracing::error!(queue = %self.name, offset, "stream entry damaged: {e}");
                        (0, None)
                    }
                };
                entries.push((offset, timestamp, message));
            },
        );
        if let Err(e) = result {
            tracing::error!(queue = %self.name, "cannot read the stream from the store: {e}");
        }
        entries
    }

    /// Under the lock again: the batch goes to the consumer's buffer, unless the consumer left
    /// or retention moved it meanwhile.
    fn stream_end_read(&self, st: &mut QueueState, read: &PendingRead, entries: Vec<ReadEntry>) {
        let Some(log) = st.stream.as_deref_mut() else {
            return;
        };
        let (first, tail_start) = (log.first, log.tail_start);
        let Some(cursor) = log.cursor_of(&read.consumer) else {
            return;
        };
        cursor.reading = false;
        if cursor.next != read.from {
            return;
        }
        for (offset, timestamp, message) in entries {
            if offset < first || offset < cursor.next {
                continue;
            }
            if let Some(message) = message {
                cursor.buffer.push_back((offset, timestamp, message));
            }
            cursor.next = offset + 1;
        }
        if cursor.next == read.from {
            // Nothing there although the tail starts later: entries missing from the store.
            // Skip to what can be read, rather than asking again forever.
            tracing::error!(queue = %self.name, from = read.from, "stream entries missing; skipping to {tail_start}");
            cursor.next = tail_start.max(first);
        }
    }

    /// A stream consumer's deliveries were acked, rejected or requeued: it may take more.
    pub(in crate::broker::queue) fn stream_settle(
        self: &Arc<Self>,
        consumer: Option<&Arc<Consumer>>,
        count: usize,
        acked: bool,
    ) {
        // A stream counts no unacknowledged messages (RabbitMQ shows 0): nothing is taken
        // from it.
        let mut st = self.state.lock();
        if acked {
            MessageCounts::bump(&self.counts.ack, count as u64);
        }
        if let Some(c) = consumer {
            c.settle(count as u32);
        }
        self.stream_dispatch(&mut st);
        self.finish(st);
    }
}

/// Told by the store when the commit a stream's consumers wait for is over. The delivery runs
/// on the runtime the stream was dispatched from, not on the store's writer thread (which has
/// commits to get on with), unless there was none.
struct CommitWaiter {
    queue: Weak<Queue>,
    runtime: Option<tokio::runtime::Handle>,
}

impl CommitListener for CommitWaiter {
    fn committed(&self, _token: u64, _ok: bool) {
        let Some(queue) = self.queue.upgrade() else {
            return;
        };
        match &self.runtime {
            Some(runtime) => {
                runtime.spawn(async move { queue.stream_committed() });
            }
            None => queue.stream_committed(),
        }
    }
}

/// How many entries to read for a consumer: its prefetch window, within a batch's bounds.
fn read_count(consumer: &Consumer) -> usize {
    match consumer.prefetch {
        0 => READ_ENTRIES,
        n => (n as usize).min(READ_ENTRIES),
    }
}
