//! Fuzzing the write-ahead log's record decoder (store/wal/record.rs): arbitrary bytes, as a
//! crash or a damaged disk may leave them, either decode to a record or to nothing — never a
//! panic or an allocation the bytes do not pay for — and a record that decodes encodes back to
//! the same bytes, of the length `encoded_len` announces. Half the inputs (first byte even) get
//! a valid header and checksum around the rest, so that the operation decoder behind them sees
//! arbitrary payloads too.

use bytes::Bytes;

use crate::store::wal::record;

/// One fuzz run over `data`: panics if the decoder breaks a rule.
pub fn wal_record(data: &[u8]) {
    let bytes = match data.split_first() {
        Some((mode, payload)) if mode % 2 == 0 => {
            let mut sealed = Vec::new();
            record::seal(u64::from(*mode), payload, &mut sealed);
            Bytes::from(sealed)
        }
        _ => Bytes::copy_from_slice(data),
    };
    let Some(decoded) = record::decode(&bytes) else {
        return;
    };
    assert!(decoded.len <= bytes.len(), "a record longer than its bytes");
    let mut again = Vec::new();
    let len = record::encode(decoded.seq, &decoded.ops, &mut again);
    assert_eq!(len, decoded.len, "re-encoded length");
    assert_eq!(record::encoded_len(&decoded.ops), len, "announced length");
    assert_eq!(again, bytes[..decoded.len], "re-encoded bytes");
}
