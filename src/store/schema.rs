//! What is stored and how: database names, key layouts and record encodings.
//!
//! Every value is wrapped in one envelope — format version (1 byte), payload length (4 bytes,
//! big-endian), payload, CRC-32 of the payload (4 bytes) — so a torn or damaged record is
//! detected on read instead of being misparsed. Keys are big-endian so LMDB's byte order is
//! numeric order (a queue's index iterates in FIFO order).
//!
//! Databases:
//! - `meta`: `schema_version` → u32; `seeded` → empty, once the first boot made the default
//!   user and vhost (or loaded definitions instead); `wal_applied` → u64, the last write-ahead
//!   log record a checkpoint applied (see wal/).
//! - `definitions`: kind byte + 16 bytes of SHA-256(identity) → an exchange, queue, binding,
//!   vhost, user, permission or topic permission.
//! - `messages`: message id (u64) → exchange, routing key, raw properties, body.
//! - `queue_index`: queue id (u64) ‖ queue sequence number (u64) → message id (u64) ‖ body
//!   size (u32) ‖ priority (u8) ‖ expiry (u64, ms since the epoch, 0 = never) — the last three
//!   so that a restarted queue knows them without reading the body; entries written before
//!   they were added hold the id alone.
//! - `refcounts`: message id → how many queue-index entries point at it (fan-out stores the
//!   body once).
//! - `stream_log`, `stream_segments`: streams (see stream_log.rs).
//! - `schedule_index`: schedule id ‖ due time ‖ message id → empty: delayed messages (see
//!   schedule_index.rs).

use amq_protocol::types::FieldTable;
use amq_protocol::types::generation::gen_field_table;
use amq_protocol::types::parsing::parse_field_table;
use sha2::{Digest, Sha256};

pub const SCHEMA_VERSION: u32 = 1;
pub const SCHEMA_VERSION_KEY: &[u8] = b"schema_version";
/// Present once the default user and vhost were created (first boot of an empty directory).
pub const SEEDED_KEY: &[u8] = b"seeded";
/// The sequence of the last write-ahead-log record applied to LMDB (absent: none yet).
pub const WAL_APPLIED_KEY: &[u8] = b"wal_applied";

pub const DB_META: &str = "meta";
pub const DB_DEFINITIONS: &str = "definitions";
pub const DB_MESSAGES: &str = "messages";
pub const DB_QUEUE_INDEX: &str = "queue_index";
pub const DB_REFCOUNTS: &str = "refcounts";
pub const DB_STREAM_LOG: &str = "stream_log";
pub const DB_STREAM_SEGMENTS: &str = "stream_segments";
pub const DB_SCHEDULE_INDEX: &str = "schedule_index";

const ENVELOPE_VERSION: u8 = 1;
const ENVELOPE_OVERHEAD: usize = 1 + 4 + 4;

/// Why a stored record could not be read back.
#[derive(Debug, PartialEq, Eq)]
pub enum RecordError {
    Truncated,
    BadVersion(u8),
    Checksum,
    Malformed(&'static str),
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Truncated => f.write_str("record truncated"),
            RecordError::BadVersion(v) => write!(f, "unknown record format version {v}"),
            RecordError::Checksum => f.write_str("record checksum mismatch"),
            RecordError::Malformed(what) => write!(f, "malformed record: {what}"),
        }
    }
}

/// The size of an enveloped payload of `len` bytes.
pub fn envelope_size(len: usize) -> usize {
    ENVELOPE_OVERHEAD + len
}

/// Writes `payload` in its envelope into `out`.
pub fn seal_into(out: &mut impl std::io::Write, payload_parts: &[&[u8]]) -> std::io::Result<()> {
    let len: usize = payload_parts.iter().map(|p| p.len()).sum();
    let mut crc = crc32fast::Hasher::new();
    for p in payload_parts {
        crc.update(p);
    }
    out.write_all(&[ENVELOPE_VERSION])?;
    out.write_all(&(len as u32).to_be_bytes())?;
    for p in payload_parts {
        out.write_all(p)?;
    }
    out.write_all(&crc.finalize().to_be_bytes())
}

pub fn seal(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(envelope_size(payload.len()));
    // Writing into a Vec cannot fail.
    let _ = seal_into(&mut out, &[payload]);
    out
}

/// Checks a record's envelope and returns its payload.
pub fn open(record: &[u8]) -> Result<&[u8], RecordError> {
    let (&version, rest) = record.split_first().ok_or(RecordError::Truncated)?;
    if version != ENVELOPE_VERSION {
        return Err(RecordError::BadVersion(version));
    }
    let len = u32::from_be_bytes(
        rest.get(..4)
            .ok_or(RecordError::Truncated)?
            .try_into()
            .map_err(|_| RecordError::Truncated)?,
    ) as usize;
    let payload = rest.get(4..4 + len).ok_or(RecordError::Truncated)?;
    let crc = rest.get(4 + len..8 + len).ok_or(RecordError::Truncated)?;
    if rest.len() != 8 + len {
        return Err(RecordError::Malformed("trailing bytes"));
    }
    if crc32fast::hash(payload).to_be_bytes() != crc {
        return Err(RecordError::Checksum);
    }
    Ok(payload)
}

/// What an index entry says of its message besides its id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EntryMeta {
    pub size: u32,
    pub priority: u8,
    /// When it expires in its queue, in ms since the epoch; 0 = never.
    pub expires_epoch_ms: u64,
}

pub const INDEX_VALUE_LEN: usize = 8 + 4 + 1 + 8;

/// An index entry's value.
pub fn index_value(id: u64, meta: &EntryMeta) -> [u8; INDEX_VALUE_LEN] {
    let mut v = [0u8; INDEX_VALUE_LEN];
    v[..8].copy_from_slice(&id.to_be_bytes());
    v[8..12].copy_from_slice(&meta.size.to_be_bytes());
    v[12] = meta.priority;
    v[13..].copy_from_slice(&meta.expires_epoch_ms.to_be_bytes());
    v
}

/// Reads an index entry's value: the id, and what else it holds (nothing in an entry of the
/// first format: 8 bytes, the id alone).
pub fn parse_index_value(v: &[u8]) -> Option<(u64, EntryMeta)> {
    let id = u64_value(v)?;
    if v.len() == 8 {
        return Some((id, EntryMeta::default()));
    }
    if v.len() != INDEX_VALUE_LEN {
        return None;
    }
    let meta = EntryMeta {
        size: u32::from_be_bytes(v[8..12].try_into().ok()?),
        priority: v[12],
        expires_epoch_ms: u64_value(&v[13..])?,
    };
    Some((id, meta))
}

/// `queue_id ‖ seq`, big-endian.
pub fn index_key(queue_id: u64, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&queue_id.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

pub fn parse_index_key(key: &[u8]) -> Option<(u64, u64)> {
    Some((
        u64::from_be_bytes(key.get(..8)?.try_into().ok()?),
        u64::from_be_bytes(key.get(8..16)?.try_into().ok()?),
    ))
}

pub fn u64_value(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

// ---- payload building blocks ------------------------------------------------------------------

/// Appends length-prefixed pieces to a payload.
#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// A string or byte string with a 4-byte length.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(&(b.len() as u32).to_be_bytes());
        self.0.extend_from_slice(b);
        self
    }
    pub fn table(&mut self, t: &FieldTable) -> &mut Self {
        let encoded = match gen_field_table(t)(amq_protocol::frame::WriteContext::from(Vec::new()))
        {
            Ok(ctx) => ctx.into_inner().0,
            // A table that came off the wire always re-encodes; fall back to empty.
            Err(_) => vec![0, 0, 0, 0],
        };
        self.0.extend_from_slice(&encoded);
        self
    }
}

/// Reads what [`Writer`] wrote.
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.0.len() < n {
            return Err(RecordError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    pub fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.take(1)?[0])
    }
    pub fn u64(&mut self) -> Result<u64, RecordError> {
        u64_value(self.take(8)?).ok_or(RecordError::Truncated)
    }
    pub fn bytes(&mut self) -> Result<&'a [u8], RecordError> {
        let len = u32::from_be_bytes(
            self.take(4)?
                .try_into()
                .map_err(|_| RecordError::Truncated)?,
        ) as usize;
        self.take(len)
    }
    pub fn string(&mut self) -> Result<String, RecordError> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| RecordError::Malformed("not UTF-8"))
    }
    pub fn table(&mut self) -> Result<FieldTable, RecordError> {
        let (rest, table) =
            parse_field_table(self.0).map_err(|_| RecordError::Malformed("field table"))?;
        self.0 = rest;
        Ok(table)
    }
    pub fn rest(self) -> &'a [u8] {
        self.0
    }
}

/// Definition keys: a kind byte and 16 bytes of SHA-256 over the parts that identify it.
pub fn definition_key(kind: u8, identity: &[&[u8]]) -> [u8; 17] {
    let mut hasher = Sha256::new();
    for part in identity {
        hasher.update((part.len() as u32).to_be_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut key = [0u8; 17];
    key[0] = kind;
    key[1..].copy_from_slice(&digest[..16]);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_and_detects_damage() {
        let sealed = seal(b"hello");
        assert_eq!(open(&sealed), Ok(&b"hello"[..]));
        let mut damaged = sealed.clone();
        damaged[6] ^= 1;
        assert_eq!(open(&damaged), Err(RecordError::Checksum));
        assert_eq!(
            open(&sealed[..sealed.len() - 1]),
            Err(RecordError::Truncated)
        );
        assert_eq!(open(&[9]), Err(RecordError::BadVersion(9)));
    }

    #[test]
    fn index_keys_sort_numerically() {
        assert!(index_key(1, 255) < index_key(1, 256));
        assert!(index_key(1, u64::MAX) < index_key(2, 0));
        assert_eq!(parse_index_key(&index_key(7, 9)), Some((7, 9)));
    }
}
