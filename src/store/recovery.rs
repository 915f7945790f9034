//! Start-up recovery: reads the definitions and every durable queue's index back. Message
//! bodies are *not* read here — a queue gets its index as runs of (sequence, message id) and
//! pages bodies in as it delivers — so a backlog of millions of messages restarts in little
//! time and memory.
//!
//! A damaged definition is skipped with one log line; damaged messages are found (and logged)
//! when a queue pages them in.

use std::collections::HashMap;

use heed::Env;

use super::schema::{parse_index_key, u64_value};
use super::{Dbs, Definition, StoreError};

/// Consecutive index entries: sequence numbers `seq..seq+len` holding message ids
/// `id..id+len`. A single publisher filling one queue yields one run for any number of messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexRun {
    pub seq: u64,
    pub id: u64,
    pub len: u64,
}

impl IndexRun {
    /// Extends the run with (seq, id) if it continues it.
    pub fn extend(&mut self, seq: u64, id: u64) -> bool {
        if seq == self.seq + self.len && id == self.id + self.len {
            self.len += 1;
            true
        } else {
            false
        }
    }
}

#[derive(Default)]
pub struct Recovered {
    pub definitions: Vec<Definition>,
    /// Per queue id: its index in FIFO order.
    pub queues: HashMap<u64, Vec<IndexRun>>,
    pub max_message_id: u64,
    pub max_queue_id: u64,
}

pub fn recover(env: &Env, dbs: &Dbs) -> Result<Recovered, StoreError> {
    let mut recovered = Recovered::default();
    let rtxn = env.read_txn()?;
    for entry in dbs.definitions.iter(&rtxn)? {
        let (_, value) = entry?;
        match Definition::decode(value) {
            Ok(def) => {
                if let Definition::Queue { id, .. } = &def {
                    recovered.max_queue_id = recovered.max_queue_id.max(*id);
                }
                recovered.definitions.push(def);
            }
            Err(e) => tracing::error!("skipping a damaged definition record: {e}"),
        }
    }
    if let Some((key, _)) = dbs.messages.last(&rtxn)? {
        recovered.max_message_id = u64_value(key).unwrap_or(0);
    }
    for entry in dbs.queue_index.iter(&rtxn)? {
        let (key, value) = entry?;
        let (Some((queue_id, seq)), Some(id)) = (parse_index_key(key), u64_value(value)) else {
            tracing::error!("skipping a damaged queue index entry");
            continue;
        };
        let runs = recovered.queues.entry(queue_id).or_default();
        if !runs.last_mut().is_some_and(|run| run.extend(seq, id)) {
            runs.push(IndexRun { seq, id, len: 1 });
        }
    }
    Ok(recovered)
}
