//! Start-up recovery: reads definitions and every queue's index back, rebuilds reference counts
//! from the index (the index is the truth), and drops message records nothing points at (a
//! publish that crashed before its queue entry was written).
//!
//! A damaged record never stops the broker: a damaged definition is skipped, a damaged message
//! makes its queue fail to load; each with one clear log line.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use heed::Env;

use super::schema::{Reader, RecordError, open, parse_index_key, u64_value};
use super::{Dbs, Definition, StoreError};

/// One stored message of one queue.
#[derive(Clone)]
pub struct RecoveredMessage {
    pub seq: u64,
    pub id: u64,
    pub exchange: String,
    pub routing_key: Bytes,
    pub properties: Bytes,
    pub body: Bytes,
}

#[derive(Default)]
pub struct Recovered {
    pub definitions: Vec<Definition>,
    /// Per queue id: its messages in FIFO order, or why the queue could not be loaded.
    pub queues: HashMap<u64, Result<Vec<RecoveredMessage>, String>>,
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
    if let Some(Ok((key, _))) = dbs.messages.iter(&rtxn)?.last() {
        recovered.max_message_id = u64_value(key).unwrap_or(0);
    }

    // The index, queue by queue in FIFO order; counting references as we go.
    let mut refs: BTreeMap<u64, u64> = BTreeMap::new();
    let mut decoded: HashMap<u64, Result<(String, Bytes, Bytes, Bytes), RecordError>> =
        HashMap::new();
    for entry in dbs.queue_index.iter(&rtxn)? {
        let (key, value) = entry?;
        let (Some((queue_id, seq)), Some(id)) = (parse_index_key(key), u64_value(value)) else {
            tracing::error!("skipping a damaged queue index entry");
            continue;
        };
        *refs.entry(id).or_default() += 1;
        let slot = recovered
            .queues
            .entry(queue_id)
            .or_insert_with(|| Ok(Vec::new()));
        let Ok(messages) = slot else { continue };
        let record =
            decoded
                .entry(id)
                .or_insert_with(|| match dbs.messages.get(&rtxn, &id.to_be_bytes()) {
                    Ok(Some(bytes)) => decode_message(bytes),
                    Ok(None) => Err(RecordError::Malformed("message record missing")),
                    Err(_) => Err(RecordError::Malformed("message record unreadable")),
                });
        match record {
            Ok((exchange, routing_key, properties, body)) => messages.push(RecoveredMessage {
                seq,
                id,
                exchange: exchange.clone(),
                routing_key: routing_key.clone(),
                properties: properties.clone(),
                body: body.clone(),
            }),
            Err(e) => {
                tracing::error!(
                    "queue id {queue_id}: message {id} (position {seq}) is damaged ({e}); the queue is not loaded"
                );
                *slot = Err(format!("message {id} is damaged: {e}"));
            }
        }
    }
    drop(rtxn);

    // Make refcounts match the index and drop messages nothing references.
    let mut wtxn = env.write_txn()?;
    dbs.refcounts.clear(&mut wtxn)?;
    for (id, count) in &refs {
        dbs.refcounts
            .put(&mut wtxn, &id.to_be_bytes(), &count.to_be_bytes())?;
    }
    let orphans: Vec<[u8; 8]> = dbs
        .messages
        .iter(&wtxn)?
        .filter_map(|e| e.ok())
        .filter_map(|(k, _)| u64_value(k))
        .filter(|id| !refs.contains_key(id))
        .map(|id| id.to_be_bytes())
        .collect();
    for key in &orphans {
        dbs.messages.delete(&mut wtxn, key)?;
    }
    wtxn.commit()?;
    if !orphans.is_empty() {
        tracing::info!(
            "dropped {} stored messages no queue referenced",
            orphans.len()
        );
    }
    Ok(recovered)
}

/// Splits a message record; routing key, properties and body share one copied buffer (one
/// allocation per recovered message instead of three).
fn decode_message(record: &[u8]) -> Result<(String, Bytes, Bytes, Bytes), RecordError> {
    let payload = open(record)?;
    let owned = Bytes::copy_from_slice(payload);
    let part = |s: &[u8]| {
        let start = s.as_ptr() as usize - payload.as_ptr() as usize;
        owned.slice(start..start + s.len())
    };
    let mut r = Reader(payload);
    let exchange = r.string()?;
    let routing_key = part(r.bytes()?);
    let properties = part(r.bytes()?);
    let body = part(r.rest());
    Ok((exchange, routing_key, properties, body))
}
