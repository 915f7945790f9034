//! Content-header properties as a view over the publisher's bytes.
//!
//! Decoding walks the property list once to validate it and remember where each present
//! property starts — no allocation. Deliveries forward the raw bytes unchanged (so field-table
//! order and type tags survive exactly); the broker reads single properties through accessors,
//! and parses the `headers` table only when something needs it (a headers exchange).

use amq_protocol::protocol::BasicProperties;
use amq_protocol::protocol::basic::parse_properties;
use amq_protocol::types::FieldTable;
use amq_protocol::types::parsing::parse_field_table;
use bytes::Bytes;

use crate::depth;
use crate::field_table::{be_u32, value_end};
use crate::reply::AmqpError;

/// Property order in the flags word, most significant bit first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Property {
    ContentType = 0,
    ContentEncoding,
    Headers,
    DeliveryMode,
    Priority,
    CorrelationId,
    ReplyTo,
    Expiration,
    MessageId,
    Timestamp,
    Type,
    UserId,
    AppId,
    ClusterId,
}

const COUNT: usize = 14;

#[derive(Clone, Copy)]
enum Kind {
    ShortStr,
    Table,
    Octet,
    Timestamp,
}

const KINDS: [Kind; COUNT] = [
    Kind::ShortStr,
    Kind::ShortStr,
    Kind::Table,
    Kind::Octet,
    Kind::Octet,
    Kind::ShortStr,
    Kind::ShortStr,
    Kind::ShortStr,
    Kind::ShortStr,
    Kind::Timestamp,
    Kind::ShortStr,
    Kind::ShortStr,
    Kind::ShortStr,
    Kind::ShortStr,
];

/// The properties of one message: its raw bytes (flags first) and where each present one starts.
#[derive(Clone, PartialEq, Eq)]
pub struct Properties {
    raw: Bytes,
    /// Offset into `raw` of each property's value; 0 = absent (offset 0 is the flags word).
    offsets: [u32; COUNT],
}

fn cannot_decode() -> AmqpError {
    AmqpError::frame_error("cannot decode content header")
}

impl Default for Properties {
    fn default() -> Self {
        Properties {
            raw: Bytes::from_static(&[0, 0]),
            offsets: [0; COUNT],
        }
    }
}

impl Properties {
    /// Validates `raw` (property flags, then the values) and indexes it.
    pub fn parse(raw: Bytes) -> Result<Self, AmqpError> {
        let flags = raw
            .get(..2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(cannot_decode)?;
        if flags & 1 != 0 {
            // A continuation flags word: basic has only 14 properties, so this is malformed.
            return Err(cannot_decode());
        }
        let mut offsets = [0u32; COUNT];
        let mut pos = 2usize;
        for (i, kind) in KINDS.iter().enumerate() {
            if flags & (1 << (15 - i)) == 0 {
                continue;
            }
            offsets[i] = pos as u32;
            pos = match kind {
                Kind::Octet => pos + 1,
                Kind::Timestamp => pos + 8,
                Kind::ShortStr => pos + 1 + *raw.get(pos).ok_or_else(cannot_decode)? as usize,
                Kind::Table => depth::table_end(&raw, pos)?.ok_or_else(cannot_decode)?,
            };
            if pos > raw.len() {
                return Err(cannot_decode());
            }
        }
        if pos != raw.len() {
            return Err(cannot_decode());
        }
        Ok(Properties { raw, offsets })
    }

    /// Encodes amq-protocol properties (for messages the broker itself creates).
    pub fn from_basic(props: &BasicProperties) -> Self {
        Self::parse(Bytes::from(crate::encode::properties(props))).unwrap_or_default()
    }

    /// The same properties in a buffer of their own. Parsed properties are a slice of the
    /// connection's read buffer and keep all of it alive; a message held for long (a delayed
    /// message's window) must not pin the tens of kB around it.
    pub fn detached(&self) -> Properties {
        Properties {
            raw: Bytes::copy_from_slice(&self.raw),
            offsets: self.offsets,
        }
    }

    /// The bytes exactly as the publisher sent them.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    fn offset(&self, p: Property) -> Option<usize> {
        match self.offsets[p as usize] {
            0 => None,
            o => Some(o as usize),
        }
    }

    /// A short-string property; `None` if absent or not UTF-8.
    pub fn short_str(&self, p: Property) -> Option<&str> {
        let o = self.offset(p)?;
        let len = *self.raw.get(o)? as usize;
        std::str::from_utf8(self.raw.get(o + 1..o + 1 + len)?).ok()
    }

    pub fn delivery_mode(&self) -> Option<u8> {
        self.raw.get(self.offset(Property::DeliveryMode)?).copied()
    }

    pub fn priority(&self) -> Option<u8> {
        self.raw.get(self.offset(Property::Priority)?).copied()
    }

    pub fn user_id(&self) -> Option<&str> {
        self.short_str(Property::UserId)
    }

    pub fn expiration(&self) -> Option<&str> {
        self.short_str(Property::Expiration)
    }

    pub fn reply_to(&self) -> Option<&str> {
        self.short_str(Property::ReplyTo)
    }

    pub fn has_headers(&self) -> bool {
        self.offset(Property::Headers).is_some()
    }

    /// Whether the `headers` table has one of `names` as a top-level key. Reads the raw bytes
    /// without allocating (values are skipped by their sizes), so a hot path can ask before
    /// deciding to parse the table.
    pub fn has_header_key(&self, names: &[&str]) -> bool {
        let Some(o) = self.offset(Property::Headers) else {
            return false;
        };
        let raw = &self.raw[o..];
        let Some(len) = be_u32(raw, 0) else {
            return false;
        };
        let end = (4 + len).min(raw.len());
        let mut p = 4;
        while p < end {
            let key_len = raw[p] as usize;
            let Some(key) = raw.get(p + 1..p + 1 + key_len) else {
                return false;
            };
            if names.iter().any(|n| n.as_bytes() == key) {
                return true;
            }
            match value_end(raw, p + 1 + key_len) {
                Some(next) => p = next,
                None => return false,
            }
        }
        false
    }

    /// Parses the `headers` table (allocates: call only when it is needed).
    pub fn headers(&self) -> Option<FieldTable> {
        let o = self.offset(Property::Headers)?;
        parse_field_table(&self.raw[o..]).ok().map(|(_, t)| t)
    }

    /// The encoded `headers` table (its 4-byte length first), for [`crate::field_table`].
    pub fn headers_raw(&self) -> Option<&[u8]> {
        let o = self.offset(Property::Headers)?;
        let end = o + 4 + be_u32(&self.raw, o)?;
        self.raw.get(o..end)
    }

    /// These properties with `headers` (an encoded table, length first) in place of their
    /// own, and without `removed`; every other property is copied as it is. `None` if the
    /// result does not parse (a malformed `headers`).
    pub fn with_headers(&self, headers: &[u8], removed: &[Property]) -> Option<Properties> {
        let flags_of = |i: usize| 1u16 << (15 - i);
        let mut flags = 0u16;
        let mut out = Vec::with_capacity(self.raw.len() + headers.len());
        out.extend_from_slice(&[0, 0]);
        for i in 0..COUNT {
            if i == Property::Headers as usize {
                flags |= flags_of(i);
                out.extend_from_slice(headers);
                continue;
            }
            let start = self.offsets[i] as usize;
            if start == 0 || removed.iter().any(|r| *r as usize == i) {
                continue;
            }
            // A property ends where the next present one starts, or with the bytes.
            let end = self.offsets[i + 1..]
                .iter()
                .find(|o| **o != 0)
                .map_or(self.raw.len(), |o| *o as usize);
            flags |= flags_of(i);
            out.extend_from_slice(self.raw.get(start..end)?);
        }
        out[..2].copy_from_slice(&flags.to_be_bytes());
        Properties::parse(Bytes::from(out)).ok()
    }

    /// Every property parsed by amq-protocol (allocates; for the broker's rare rewrite paths).
    pub fn to_basic(&self) -> BasicProperties {
        parse_properties(&self.raw[..])
            .map(|(_, p)| p)
            .unwrap_or_default()
    }
}

impl std::fmt::Debug for Properties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.to_basic(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::types::AMQPValue;

    #[test]
    fn indexes_every_property_and_matches_amq_protocol() {
        let mut headers = FieldTable::default();
        headers.insert("k".into(), AMQPValue::LongString("v".into()));
        let basic = BasicProperties::default()
            .with_content_type("text/plain".into())
            .with_headers(headers.clone())
            .with_delivery_mode(2)
            .with_priority(7)
            .with_reply_to("r".into())
            .with_expiration("1000".into())
            .with_timestamp(42)
            .with_user_id("guest".into())
            .with_cluster_id("c".into());
        let props = Properties::from_basic(&basic);
        assert_eq!(props.delivery_mode(), Some(2));
        assert_eq!(props.priority(), Some(7));
        assert_eq!(props.user_id(), Some("guest"));
        assert_eq!(props.expiration(), Some("1000"));
        assert_eq!(props.reply_to(), Some("r"));
        assert_eq!(props.headers(), Some(headers));
        assert_eq!(props.to_basic(), basic);
    }

    #[test]
    fn finds_top_level_header_keys_past_every_value_type() {
        use amq_protocol::types::{DecimalValue, FieldArray};
        let mut nested = FieldTable::default();
        nested.insert("CC".into(), AMQPValue::Boolean(true)); // nested: must not count
        let mut headers = FieldTable::default();
        headers.insert("a-bool".into(), AMQPValue::Boolean(true));
        headers.insert("b-i8".into(), AMQPValue::ShortShortInt(-1));
        headers.insert("c-u16".into(), AMQPValue::ShortUInt(2));
        headers.insert("d-i32".into(), AMQPValue::LongInt(3));
        headers.insert("e-f32".into(), AMQPValue::Float(1.5));
        headers.insert("f-i64".into(), AMQPValue::LongLongInt(4));
        headers.insert("g-f64".into(), AMQPValue::Double(2.5));
        headers.insert("h-ts".into(), AMQPValue::Timestamp(5));
        headers.insert(
            "i-dec".into(),
            AMQPValue::DecimalValue(DecimalValue { scale: 1, value: 7 }),
        );
        headers.insert("j-void".into(), AMQPValue::Void);
        headers.insert("k-str".into(), AMQPValue::LongString("CC".into()));
        headers.insert("l-bytes".into(), AMQPValue::ByteArray(vec![1, 2].into()));
        headers.insert(
            "m-array".into(),
            AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::LongString("x".into())])),
        );
        headers.insert("n-table".into(), AMQPValue::FieldTable(nested));
        let without =
            Properties::from_basic(&BasicProperties::default().with_headers(headers.clone()));
        assert!(!without.has_header_key(&["CC", "BCC"]));
        headers.insert("zz".into(), AMQPValue::LongInt(0));
        headers.insert("BCC".into(), AMQPValue::FieldArray(FieldArray::default()));
        let with = Properties::from_basic(&BasicProperties::default().with_headers(headers));
        assert!(with.has_header_key(&["CC", "BCC"]));
        assert!(with.has_header_key(&["zz"]));
        assert!(!Properties::from_basic(&BasicProperties::default()).has_header_key(&["CC"]));
    }

    #[test]
    fn with_headers_replaces_them_and_removes_what_is_asked() {
        let mut old = FieldTable::default();
        old.insert("old".into(), AMQPValue::LongString("x".into()));
        let basic = BasicProperties::default()
            .with_content_type("text/plain".into())
            .with_headers(old)
            .with_delivery_mode(2)
            .with_expiration("1000".into())
            .with_message_id("m".into())
            .with_app_id("a".into());
        let props = Properties::from_basic(&basic);
        let mut new = FieldTable::default();
        new.insert("new".into(), AMQPValue::LongLongInt(1));
        let new_raw = Properties::from_basic(&BasicProperties::default().with_headers(new.clone()));
        let rewritten = props
            .with_headers(new_raw.headers_raw().unwrap(), &[Property::Expiration])
            .unwrap();
        let want = BasicProperties::default()
            .with_content_type("text/plain".into())
            .with_headers(new.clone())
            .with_delivery_mode(2)
            .with_message_id("m".into())
            .with_app_id("a".into());
        assert_eq!(rewritten.to_basic(), want);
        // Headers where there were none; the last property is copied to the end.
        let bare = Properties::from_basic(&BasicProperties::default().with_cluster_id("c".into()));
        let with = bare
            .with_headers(new_raw.headers_raw().unwrap(), &[])
            .unwrap();
        assert_eq!(
            with.to_basic(),
            BasicProperties::default()
                .with_headers(new)
                .with_cluster_id("c".into())
        );
        assert!(bare.with_headers(&[0, 0, 0, 9], &[]).is_none());
    }

    #[test]
    fn truncated_or_trailing_bytes_are_refused() {
        let raw =
            crate::encode::properties(&BasicProperties::default().with_message_id("abc".into()));
        assert!(Properties::parse(Bytes::from(raw.clone())).is_ok());
        assert!(Properties::parse(Bytes::from(raw[..raw.len() - 1].to_vec())).is_err());
        let mut longer = raw.clone();
        longer.push(0);
        assert!(Properties::parse(Bytes::from(longer)).is_err());
        assert!(Properties::parse(Bytes::from_static(&[0])).is_err());
    }
}

impl Properties {
    /// Writes these properties into `out` with the long-long header `key` = `value` added at
    /// the end of `headers` (a table is made if there is none), without allocating. Returns
    /// `false` (and writes nothing) when `headers` already holds `key` or does not scan: the
    /// caller rewrites the table then ([`Properties::with_headers`]).
    pub fn write_with_header(&self, out: &mut impl bytes::BufMut, key: &[u8], value: i64) -> bool {
        let Ok(key_len) = u8::try_from(key.len()) else {
            return false;
        };
        let entry_len = 1 + key.len() + 1 + 8;
        let (table_at, table_body) = match self.offset(Property::Headers) {
            Some(o) => match self.headers_raw().filter(|t| !has_key(t, key)) {
                Some(table) => (o, Some(&table[4..])),
                None => return false,
            },
            // No headers: the table goes where it belongs, before the first property after it.
            None => {
                let after = (Property::Headers as usize + 1..COUNT)
                    .find_map(|i| (self.offsets[i] != 0).then_some(self.offsets[i] as usize));
                (after.unwrap_or(self.raw.len()), None)
            }
        };
        // Offsets come from `parse`, so these are in range; `get` keeps it so if they were not.
        let existing = table_body.map_or(0, <[u8]>::len);
        let rest_at = table_at + 4 * usize::from(table_body.is_some()) + existing;
        let (Some(flags), Some(before), Some(after)) = (
            self.raw.get(..2),
            self.raw.get(2..table_at),
            self.raw.get(rest_at..),
        ) else {
            return false;
        };
        let flags =
            u16::from_be_bytes([flags[0], flags[1]]) | 1 << (15 - Property::Headers as usize);
        out.put_u16(flags);
        out.put_slice(before);
        out.put_u32((existing + entry_len) as u32);
        if let Some(body) = table_body {
            out.put_slice(body);
        }
        out.put_u8(key_len);
        out.put_slice(key);
        out.put_u8(b'l');
        out.put_i64(value);
        out.put_slice(after);
        true
    }
}

/// Whether the table (4-byte length first) has an entry `key`; a table that does not scan
/// counts as having it (the caller takes the careful path).
fn has_key(table: &[u8], key: &[u8]) -> bool {
    let Some(body) = be_u32(table, 0).and_then(|len| table.get(4..4 + len)) else {
        return true;
    };
    let mut p = 0;
    while p < body.len() {
        let key_end = p + 1 + body[p] as usize;
        let (Some(k), Some(end)) = (body.get(p + 1..key_end), value_end(body, key_end)) else {
            return true;
        };
        if k == key {
            return true;
        }
        p = end;
    }
    false
}

#[cfg(test)]
mod header_tests {
    use super::*;
    use amq_protocol::types::{AMQPValue, FieldTable};

    fn props(basic: BasicProperties) -> Properties {
        Properties::from_basic(&basic)
    }

    /// What `write_with_header` wrote, parsed again.
    fn written(p: &Properties) -> Option<BasicProperties> {
        let mut out = Vec::new();
        if !p.write_with_header(&mut out, b"x-n", 7) {
            return None;
        }
        Some(Properties::parse(Bytes::from(out)).unwrap().to_basic())
    }

    fn n_of(b: &BasicProperties) -> Option<AMQPValue> {
        b.headers().as_ref()?.inner().get("x-n").cloned()
    }

    #[test]
    fn a_header_is_added_without_losing_any_property() {
        // No properties at all; only the ones before headers; only the ones after; both sides
        // of an existing table.
        let mut table = FieldTable::default();
        table.insert("a".into(), AMQPValue::LongString("b".into()));
        let cases = [
            BasicProperties::default(),
            BasicProperties::default().with_content_type("text/plain".into()),
            BasicProperties::default()
                .with_delivery_mode(2)
                .with_app_id("app".into()),
            BasicProperties::default()
                .with_content_type("t".into())
                .with_headers(table.clone())
                .with_priority(3),
        ];
        for basic in cases {
            let got = written(&props(basic.clone())).expect("written");
            assert_eq!(n_of(&got), Some(AMQPValue::LongLongInt(7)));
            assert_eq!(got.content_type(), basic.content_type());
            assert_eq!(got.delivery_mode(), basic.delivery_mode());
            assert_eq!(got.app_id(), basic.app_id());
            assert_eq!(got.priority(), basic.priority());
            if let Some(h) = basic.headers() {
                assert_eq!(
                    got.headers().as_ref().unwrap().inner().get("a"),
                    h.inner().get("a")
                );
            }
        }
    }

    #[test]
    fn a_table_that_has_the_key_is_left_to_the_caller() {
        let mut table = FieldTable::default();
        table.insert("x-n".into(), AMQPValue::LongLongInt(1));
        assert!(written(&props(BasicProperties::default().with_headers(table))).is_none());
    }
}
