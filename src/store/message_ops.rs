//! What the broker sends the store writer about messages: records, queue index entries (with
//! their metadata), spills of paging queues, removes, and reads of records back. Each call
//! pushes one operation onto the writer's queue (op_queue.rs) and returns at once; reads are
//! one LMDB read transaction.

use super::{EntryMeta, MessageRecord, Op, RecordError, Store, StoreError, StoredMessage};

/// The queue id of routing pins ([`Store::pin`]): no queue has it, as queue ids start at 1.
pub const ROUTING_PIN: u64 = 0;

impl Store {
    pub fn put_message(&self, id: u64, record: MessageRecord) {
        self.send(Op::PutMessage { id, record });
    }

    /// Returns the operation's number: the entry is durable once [`Store::committed_ops`]
    /// reaches it.
    pub fn enqueue(&self, queue_id: u64, seq: u64, id: u64) -> u64 {
        self.enqueue_meta(queue_id, seq, id, EntryMeta::default())
    }

    /// [`Store::enqueue`], with what a restarted queue must know of the message without
    /// reading it.
    pub fn enqueue_meta(&self, queue_id: u64, seq: u64, id: u64, meta: EntryMeta) -> u64 {
        self.send(Op::Enqueue {
            queue_id,
            seq,
            id,
            meta,
        })
    }

    /// Holds message `id` stored while its publisher enqueues it in several queues: without
    /// the pin, a first queue whose consumer acknowledges its copy before the next queue has
    /// its entry would take the reference count to zero and delete the record under it. The
    /// pin is an entry of [`ROUTING_PIN`], so checkpoints, the log and recovery (which drops
    /// the entries of queues that do not exist) treat it as any other entry.
    pub fn pin(&self, id: u64) {
        self.enqueue(ROUTING_PIN, id, id);
    }

    /// The publisher of message `id` has enqueued it everywhere: its pin goes.
    pub fn unpin(&self, id: u64) {
        self.remove(ROUTING_PIN, id, id);
    }

    pub fn remove(&self, queue_id: u64, seq: u64, id: u64) {
        self.send(Op::Remove {
            queue_id,
            seq,
            id,
            scattered: false,
        });
    }

    /// [`Store::remove`] of an entry removed out of the store's order (a priority queue
    /// delivers level by level): each such remove dirties a page of its own.
    pub fn remove_scattered(&self, queue_id: u64, seq: u64, id: u64) {
        self.send(Op::Remove {
            queue_id,
            seq,
            id,
            scattered: true,
        });
    }

    /// Spilling (a paging queue's message it does not keep across a restart): the record, if
    /// it was not stored already, and the entry, neither written to the log (a crash loses
    /// them; the start drops such entries anyway). Returns the enqueue's operation number.
    pub fn spill(&self, queue_id: u64, seq: u64, id: u64, record: Option<MessageRecord>) -> u64 {
        if let Some(record) = record {
            self.send(Op::Unlogged(Box::new(Op::PutMessage { id, record })));
        }
        self.send(Op::Unlogged(Box::new(Op::Enqueue {
            queue_id,
            seq,
            id,
            meta: EntryMeta::default(),
        })))
    }

    /// Removes a spilled entry (see [`Store::spill`]).
    pub fn unspill(&self, queue_id: u64, seq: u64, id: u64) {
        self.send(Op::Unlogged(Box::new(Op::Remove {
            queue_id,
            seq,
            id,
            scattered: false,
        })));
    }

    /// Removes spilled entries (see [`Store::spill`]).
    pub fn unspill_entries(&self, queue_id: u64, entries: Vec<(u64, u64)>) {
        self.send(Op::Unlogged(Box::new(Op::RemoveEntries {
            queue_id,
            entries,
        })));
    }

    pub fn remove_entries(&self, queue_id: u64, entries: Vec<(u64, u64)>) {
        self.send(Op::RemoveEntries { queue_id, entries });
    }

    /// Reads stored messages in one read transaction; `found` gets each id with its decoded
    /// record (or why it could not be read).
    pub fn read_messages(
        &self,
        ids: impl IntoIterator<Item = u64>,
        mut found: impl FnMut(u64, Result<StoredMessage, RecordError>),
    ) -> Result<(), StoreError> {
        let shared = self.lmdb.shared()?;
        let rtxn = shared.read_txn()?;
        let mut bytes_read = 0usize;
        for id in ids {
            let record = match self.dbs.messages.get(&rtxn, &id.to_be_bytes())? {
                Some(bytes) => {
                    bytes_read += bytes.len();
                    StoredMessage::decode(bytes)
                }
                None => Err(RecordError::Malformed("message record missing")),
            };
            found(id, record);
        }
        drop(rtxn);
        shared.map_pages().touched(bytes_read as u64);
        // Scattered reads (a priority level's messages, 1 in 10) fault in whole neighbourhoods
        // of pages around each record: far more than the bytes read.
        shared.map_pages().release_if_resident();
        Ok(())
    }

    pub fn drop_queue(&self, queue_id: u64) {
        self.send(Op::DropQueue { queue_id });
    }
}
