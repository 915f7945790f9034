//! A message record read back from the store, decoded without copying its parts apart.

use bytes::Bytes;

use super::schema::{self, RecordError};

/// A stored message, decoded: routing key, properties and body share one buffer.
pub struct StoredMessage {
    pub exchange: String,
    pub routing_key: Bytes,
    pub properties: Bytes,
    pub body: Bytes,
}

impl StoredMessage {
    pub(super) fn decode(record: &[u8]) -> Result<Self, RecordError> {
        Self::from_payload(schema::open(record)?)
    }

    /// Decodes a record's payload (after its envelope was checked).
    pub(super) fn from_payload(payload: &[u8]) -> Result<Self, RecordError> {
        let owned = Bytes::copy_from_slice(payload);
        let part = |s: &[u8]| {
            let start = s.as_ptr() as usize - payload.as_ptr() as usize;
            owned.slice(start..start + s.len())
        };
        let mut r = schema::Reader(payload);
        let exchange = r.string()?;
        let routing_key = part(r.bytes()?);
        let properties = part(r.bytes()?);
        let body = part(r.rest());
        Ok(StoredMessage {
            exchange,
            routing_key,
            properties,
            body,
        })
    }
}
