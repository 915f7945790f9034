//! Encoded field tables read and written as bytes, for the broker's header paths (the `CC` /
//! `BCC` keys of a publish, a BCC removed, a dead letter's `x-death`): entries are byte slices of the input, so a rewrite copies what it does
//! not change instead of decoding every nested value into amq-protocol's types and encoding it
//! again. Only tables that [`crate::Properties::parse`] accepted are expected here (nesting is
//! bounded there); anything malformed reads as `None`, never a panic.
//!
//! Values are slices that start with their type octet, exactly as they sit in a table.

/// One entry of a table: its key and its value (type octet first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
}

/// The big-endian 32-bit length at `pos`.
pub(crate) fn be_u32(buf: &[u8], pos: usize) -> Option<usize> {
    let b = buf.get(pos..pos.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

/// Where the value (type octet first) at `pos` ends; nested values are skipped by length.
pub(crate) fn value_end(buf: &[u8], pos: usize) -> Option<usize> {
    let p = pos + 1;
    let end = match buf.get(pos)? {
        b't' | b'b' | b'B' => p + 1,
        b's' | b'u' | b'U' => p + 2,
        b'I' | b'i' | b'f' => p + 4,
        b'l' | b'L' | b'd' | b'T' => p + 8,
        b'D' => p + 5,
        b'V' => p,
        b'S' | b'x' | b'A' | b'F' => p.checked_add(4)?.checked_add(be_u32(buf, p)?)?,
        _ => return None,
    };
    (end <= buf.len()).then_some(end)
}

/// The entries of the table whose 4-byte length starts `table`, in order (duplicates kept).
pub fn entries(table: &[u8]) -> Option<Vec<Entry<'_>>> {
    let body = table.get(4..4usize.checked_add(be_u32(table, 0)?)?)?;
    let mut out = Vec::new();
    let mut p = 0;
    while p < body.len() {
        let key_end = p + 1 + *body.get(p)? as usize;
        let key = body.get(p + 1..key_end)?;
        let end = value_end(body, key_end)?;
        out.push(Entry {
            key,
            value: &body[key_end..end],
        });
        p = end;
    }
    Some(out)
}

/// The value of `key` (the last one, as a parser into a map would keep).
pub fn get<'a>(entries: &[Entry<'a>], key: &str) -> Option<&'a [u8]> {
    entries
        .iter()
        .rev()
        .find(|e| e.key == key.as_bytes())
        .map(|e| e.value)
}

/// The elements of an array value (`A`), each type octet first.
pub fn array_elements(value: &[u8]) -> Option<Vec<&[u8]>> {
    if value.first() != Some(&b'A') {
        return None;
    }
    let body = value.get(5..5usize.checked_add(be_u32(value, 1)?)?)?;
    let mut out = Vec::new();
    let mut p = 0;
    while p < body.len() {
        let end = value_end(body, p)?;
        out.push(&body[p..end]);
        p = end;
    }
    Some(out)
}

/// The table inside a table value (`F`), length first, for [`entries`].
pub fn nested_table(value: &[u8]) -> Option<&[u8]> {
    (value.first() == Some(&b'F')).then(|| &value[1..])
}

/// The bytes of a long-string value (`S`).
pub fn long_str(value: &[u8]) -> Option<&[u8]> {
    if value.first() != Some(&b'S') {
        return None;
    }
    value.get(5..5usize.checked_add(be_u32(value, 1)?)?)
}

/// An integer value of any width (timestamps included), as amq-protocol reads each tag.
pub fn integer(value: &[u8]) -> Option<i64> {
    let (&tag, v) = value.split_first()?;
    let n = |len: usize| v.get(..len);
    Some(match tag {
        b'b' => n(1)?[0] as i8 as i64,
        b'B' => n(1)?[0] as i64,
        b's' | b'U' => i16::from_be_bytes(n(2)?.try_into().ok()?) as i64,
        b'u' => u16::from_be_bytes(n(2)?.try_into().ok()?) as i64,
        b'I' => i32::from_be_bytes(n(4)?.try_into().ok()?) as i64,
        b'i' => u32::from_be_bytes(n(4)?.try_into().ok()?) as i64,
        b'l' | b'L' => i64::from_be_bytes(n(8)?.try_into().ok()?),
        b'T' => u64::from_be_bytes(n(8)?.try_into().ok()?) as i64,
        _ => return None,
    })
}

/// Writes a table or an array into a byte vector: open it, put entries or elements, close it
/// (which patches the length).
pub struct Writer {
    pub out: Vec<u8>,
}

/// An open table or array: where its length goes.
#[must_use]
pub struct Open(usize);

impl Writer {
    pub fn new() -> Self {
        Writer { out: Vec::new() }
    }

    /// Starts a bare table (as the `headers` property is: length, entries).
    pub fn begin_table(&mut self) -> Open {
        let at = self.out.len();
        self.out.extend_from_slice(&[0; 4]);
        Open(at)
    }

    /// Starts a table value (`F`) or an array value (`A`).
    pub fn begin_value(&mut self, tag: u8) -> Open {
        self.out.push(tag);
        self.begin_table()
    }

    /// Ends what `open` started; `None` if it outgrew a 32-bit length.
    pub fn end(&mut self, open: Open) -> Option<()> {
        let len = u32::try_from(self.out.len() - open.0 - 4).ok()?;
        self.out[open.0..open.0 + 4].copy_from_slice(&len.to_be_bytes());
        Some(())
    }

    /// Copies the entries whose key `keep` accepts, as they are.
    pub fn entries_where(&mut self, entries: &[Entry], keep: impl Fn(&[u8]) -> bool) -> &mut Self {
        for entry in entries.iter().filter(|e| keep(e.key)) {
            self.key(entry.key).raw(entry.value);
        }
        self
    }

    /// A key (a short string; keys over 255 bytes are cut, as no table can hold them).
    pub fn key(&mut self, key: &[u8]) -> &mut Self {
        let key = &key[..key.len().min(255)];
        self.out.push(key.len() as u8);
        self.out.extend_from_slice(key);
        self
    }

    /// A value copied as it is (type octet first).
    pub fn raw(&mut self, value: &[u8]) -> &mut Self {
        self.out.extend_from_slice(value);
        self
    }

    pub fn long_str(&mut self, s: &[u8]) -> &mut Self {
        self.out.push(b'S');
        self.out.extend_from_slice(&(s.len() as u32).to_be_bytes());
        self.out.extend_from_slice(s);
        self
    }

    pub fn long_long(&mut self, n: i64) -> &mut Self {
        self.out.push(b'l');
        self.out.extend_from_slice(&n.to_be_bytes());
        self
    }

    pub fn timestamp(&mut self, t: u64) -> &mut Self {
        self.out.push(b'T');
        self.out.extend_from_slice(&t.to_be_bytes());
        self
    }
}

impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::types::{AMQPValue, FieldArray, FieldTable};

    fn encoded(t: &FieldTable) -> Vec<u8> {
        let props = amq_protocol::protocol::BasicProperties::default().with_headers(t.clone());
        let raw = crate::encode::properties(&props);
        raw[2..].to_vec() // after the flags word, the headers table is the only property
    }

    #[test]
    fn reads_what_amq_protocol_writes() {
        let mut inner = FieldTable::default();
        inner.insert("queue".into(), AMQPValue::LongString("q1".into()));
        inner.insert("count".into(), AMQPValue::LongLongInt(3));
        let mut t = FieldTable::default();
        t.insert("a".into(), AMQPValue::ShortShortInt(-2));
        t.insert("b".into(), AMQPValue::ShortUInt(65535));
        t.insert("c".into(), AMQPValue::LongInt(-7));
        t.insert("d".into(), AMQPValue::Timestamp(99));
        t.insert(
            "e".into(),
            AMQPValue::FieldArray(FieldArray::from(vec![
                AMQPValue::FieldTable(inner),
                AMQPValue::LongString("x".into()),
            ])),
        );
        let raw = encoded(&t);
        let es = entries(&raw).unwrap();
        assert_eq!(es.len(), 5);
        assert_eq!(integer(get(&es, "a").unwrap()), Some(-2));
        assert_eq!(integer(get(&es, "b").unwrap()), Some(65535));
        assert_eq!(integer(get(&es, "c").unwrap()), Some(-7));
        assert_eq!(integer(get(&es, "d").unwrap()), Some(99));
        let elements = array_elements(get(&es, "e").unwrap()).unwrap();
        assert_eq!(elements.len(), 2);
        assert_eq!(long_str(elements[1]), Some(&b"x"[..]));
        let nested = entries(nested_table(elements[0]).unwrap()).unwrap();
        assert_eq!(long_str(get(&nested, "queue").unwrap()), Some(&b"q1"[..]));
        assert_eq!(integer(get(&nested, "count").unwrap()), Some(3));
    }

    #[test]
    fn writes_what_amq_protocol_reads() {
        let mut w = Writer::new();
        let table = w.begin_table();
        w.key(b"s").long_str(b"text");
        w.key(b"n").long_long(-5);
        w.key(b"t").timestamp(7);
        w.key(b"arr");
        let arr = w.begin_value(b'A');
        w.long_str(b"k1").raw(&[b'b', 1]);
        assert!(w.end(arr).is_some());
        assert!(w.end(table).is_some());
        let (_, parsed) = amq_protocol::types::parsing::parse_field_table(&w.out[..]).unwrap();
        assert_eq!(
            parsed.inner().get("s"),
            Some(&AMQPValue::LongString("text".into()))
        );
        assert_eq!(parsed.inner().get("n"), Some(&AMQPValue::LongLongInt(-5)));
        assert_eq!(parsed.inner().get("t"), Some(&AMQPValue::Timestamp(7)));
        assert_eq!(
            parsed.inner().get("arr"),
            Some(&AMQPValue::FieldArray(FieldArray::from(vec![
                AMQPValue::LongString("k1".into()),
                AMQPValue::ShortShortInt(1),
            ])))
        );
    }

    #[test]
    fn malformed_bytes_read_as_none() {
        let mut t = FieldTable::default();
        t.insert("k".into(), AMQPValue::LongString("value".into()));
        let raw = encoded(&t);
        for cut in 0..raw.len() {
            let _ = entries(&raw[..cut]); // never panics
        }
        assert!(entries(&raw[..raw.len() - 1]).is_none());
        let mut bad_tag = raw.clone();
        bad_tag[6] = b'?';
        assert!(entries(&bad_tag).is_none());
        assert!(array_elements(&[b'A', 0, 0, 0, 9, b'S']).is_none());
        assert_eq!(integer(&[b'l', 1]), None);
    }
}
