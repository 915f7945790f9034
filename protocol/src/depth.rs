//! A guard against stack exhaustion: amq-protocol parses nested field tables and arrays
//! recursively with no depth limit, so a frame of a few kilobytes nesting arrays a thousand
//! levels deep would overflow the stack and abort the process. Before handing a payload to that
//! parser, [`check_method`] walks its field tables (iteratively bounded to
//! [`MAX_DEPTH`] levels) and refuse deeper nesting with a 502 SYNTAX_ERROR; [`table_end`] does
//! the same walk for the content-header properties, which warren never hands to that parser on
//! the hot path.
//!
//! Only nesting is judged here; anything else malformed is left for the real parser to report.

use crate::reply::AmqpError;

/// Deeper than any real application nests headers (RabbitMQ's own x-death is 3 levels).
pub const MAX_DEPTH: usize = 100;

struct TooDeep;

/// Outcome of walking one value: where it ends, or `None` if the bytes are malformed (which
/// the real parser will report).
type Walk = Result<Option<usize>, TooDeep>;

fn u32_at(buf: &[u8], pos: usize) -> Option<usize> {
    let b = buf.get(pos..pos + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

fn short_str_end(buf: &[u8], pos: usize) -> Option<usize> {
    Some(pos + 1 + *buf.get(pos)? as usize)
}

/// Walks a field table starting at its 4-byte length.
fn table(buf: &[u8], pos: usize, depth: usize) -> Walk {
    if depth > MAX_DEPTH {
        return Err(TooDeep);
    }
    let Some(len) = u32_at(buf, pos) else {
        return Ok(None);
    };
    let end = pos + 4 + len;
    let Some(body) = buf.get(..end) else {
        return Ok(None);
    };
    let mut p = pos + 4;
    while p < end {
        let Some(key_end) = short_str_end(body, p) else {
            return Ok(None);
        };
        match value(body, key_end, depth)? {
            Some(next) => p = next,
            None => return Ok(None),
        }
    }
    Ok(Some(end))
}

fn array(buf: &[u8], pos: usize, depth: usize) -> Walk {
    if depth > MAX_DEPTH {
        return Err(TooDeep);
    }
    let Some(len) = u32_at(buf, pos) else {
        return Ok(None);
    };
    let end = pos + 4 + len;
    let Some(body) = buf.get(..end) else {
        return Ok(None);
    };
    let mut p = pos + 4;
    while p < end {
        match value(body, p, depth)? {
            Some(next) => p = next,
            None => return Ok(None),
        }
    }
    Ok(Some(end))
}

/// Walks one typed value (type octet first).
fn value(buf: &[u8], pos: usize, depth: usize) -> Walk {
    let Some(&tag) = buf.get(pos) else {
        return Ok(None);
    };
    let p = pos + 1;
    let fixed = |n: usize| Ok(Some(p + n));
    match tag {
        b't' | b'b' | b'B' => fixed(1),
        b's' | b'u' | b'U' => fixed(2),
        b'I' | b'i' | b'f' => fixed(4),
        b'l' | b'L' | b'd' | b'T' => fixed(8),
        b'D' => fixed(5),
        b'V' => fixed(0),
        b'S' | b'x' => Ok(u32_at(buf, p).map(|len| p + 4 + len)),
        b'A' => array(buf, p, depth + 1),
        b'F' => table(buf, p, depth + 1),
        _ => Ok(None),
    }
}

fn too_deep() -> AmqpError {
    AmqpError::syntax_error(format_args!(
        "field table nested deeper than {MAX_DEPTH} levels"
    ))
}

/// Skips `n` short strings from `pos`.
fn skip_short_strs(buf: &[u8], mut pos: usize, n: usize) -> Option<usize> {
    for _ in 0..n {
        pos = short_str_end(buf, pos)?;
    }
    Some(pos)
}

/// Where the field table argument of a method starts, for the methods that carry one.
/// `payload` starts with class and method ids.
fn method_table_offset(payload: &[u8], class_id: u16, method_id: u16) -> Option<usize> {
    const ARGS: usize = 4;
    match (class_id, method_id) {
        (10, 10) => Some(ARGS + 2), // start: two octets, table
        (10, 11) => Some(ARGS),     // start-ok: table first
        (40, 10) => skip_short_strs(payload, ARGS + 2, 2).map(|p| p + 1), // exchange.declare
        (40, 30) | (40, 40) => skip_short_strs(payload, ARGS + 2, 3).map(|p| p + 1), // exchange.bind/unbind
        (50, 10) => skip_short_strs(payload, ARGS + 2, 1).map(|p| p + 1), // queue.declare
        (50, 20) => skip_short_strs(payload, ARGS + 2, 3).map(|p| p + 1), // queue.bind
        (50, 50) => skip_short_strs(payload, ARGS + 2, 3),                // queue.unbind: no bits
        (60, 20) => skip_short_strs(payload, ARGS + 2, 2).map(|p| p + 1), // basic.consume
        _ => None,
    }
}

/// The end of the field table starting at `pos` (its 4-byte length): `Ok(Some(end))`,
/// `Ok(None)` if malformed, `Err` (502) if nested deeper than [`MAX_DEPTH`].
pub fn table_end(buf: &[u8], pos: usize) -> Result<Option<usize>, AmqpError> {
    table(buf, pos, 1).map_err(|_| too_deep())
}

/// Refuses a method frame payload whose field table nests too deeply.
pub fn check_method(payload: &[u8], class_id: u16, method_id: u16) -> Result<(), AmqpError> {
    let Some(offset) = method_table_offset(payload, class_id, method_id) else {
        return Ok(());
    };
    table(payload, offset, 1)
        .map(|_| ())
        .map_err(|_| too_deep().on(class_id, method_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table {"": A[A[...A[]...]]} with `levels` nested arrays.
    fn nested_table(levels: usize) -> Vec<u8> {
        let mut inner: Vec<u8> = Vec::new();
        for _ in 0..levels {
            let mut v = vec![b'A'];
            v.extend_from_slice(&(inner.len() as u32).to_be_bytes());
            v.extend_from_slice(&inner);
            inner = v;
        }
        let mut entry = vec![0u8];
        entry.extend_from_slice(&inner);
        let mut t = (entry.len() as u32).to_be_bytes().to_vec();
        t.extend_from_slice(&entry);
        t
    }

    fn queue_declare_payload(table: &[u8]) -> Vec<u8> {
        let mut p = vec![0, 50, 0, 10, 0, 0, 1, b'q', 0];
        p.extend_from_slice(table);
        p
    }

    #[test]
    fn shallow_tables_pass_and_deep_ones_are_syntax_errors() {
        assert!(check_method(&queue_declare_payload(&nested_table(10)), 50, 10).is_ok());
        let err = check_method(&queue_declare_payload(&nested_table(5000)), 50, 10).unwrap_err();
        assert_eq!(err.code, crate::reply::SYNTAX_ERROR);
    }

    #[test]
    fn table_end_reports_the_end_and_refuses_deep_nesting() {
        let t = nested_table(3);
        assert_eq!(table_end(&t, 0).unwrap(), Some(t.len()));
        assert!(table_end(&nested_table(5000), 0).is_err());
        assert_eq!(table_end(&t[..t.len() - 1], 0).unwrap(), None);
    }
}
