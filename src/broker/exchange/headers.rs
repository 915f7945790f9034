//! Headers-exchange routing: matching message headers against binding arguments exactly like
//! RabbitMQ 3.10+/3.x `rabbit_exchange_type_headers.erl` (`headers_match/2`, `validate_binding/2`).
//!
//! This module owns only the binding set, the `x-match` validation text and the match rules. It
//! knows nothing about exchanges, queues, channels or persistence and must not do I/O: a
//! destination is an opaque `D`, and error texts are returned for the caller to wrap in a 406.
//!
//! Rules mirrored from RabbitMQ:
//! * `x-match` is `all` (default when absent), `any`, `all-with-x` or `any-with-x`. An
//!   unrecognised value that slipped past validation is treated as `all` (RabbitMQ's "legacy").
//! * The `x-match` key itself never takes part in matching. Other keys starting with `x-` are
//!   ignored under `all`/`any` and compared under `all-with-x`/`any-with-x`.
//! * A binding value of type void matches when the header is present, whatever its value.
//! * Otherwise values compare with Erlang's `==` on the decoded values, *ignoring the AMQP type*:
//!   all integer types and timestamps are integers (`1` as `b` equals `1` as `I`, `l` or `T`),
//!   integers equal floats of the same value (`1` == `1.0`), `f` and `d` are both doubles, and
//!   long strings equal byte arrays with the same bytes. Booleans, decimals (a `{Scale, Value}`
//!   pair), void, arrays and tables only equal their own kind; inside arrays and tables each
//!   element is an Erlang `{Type, Value}` tuple, so there the AMQP types must be identical. An
//!   empty array equals an empty table (both are `[]` in Erlang).
//! * `all` matches when every considered key matches, so a binding with no considered keys
//!   matches every message (even one without headers); `any` needs at least one matching key,
//!   so such a binding matches nothing. A message without headers is an empty table.

use crate::broker::field_display::type_name;
use amq_protocol::types::{AMQPValue, DecimalValue, FieldTable, ShortString};

/// The bytes of a string-like value (RabbitMQ only knows `longstr`; amq-protocol's `ShortString`
/// variant never comes off the wire, but it is treated as the same Erlang binary).
fn string_bytes(v: &AMQPValue) -> Option<&[u8]> {
    match v {
        AMQPValue::LongString(s) => Some(s.as_bytes()),
        AMQPValue::ShortString(s) => Some(s.as_str().as_bytes()),
        _ => None,
    }
}

fn key_str(k: &ShortString) -> &str {
    k.as_str()
}

/// `(any, with_x)` for a binding's x-match: `all` (absent or unrecognised), `any`, `all-with-x`,
/// `any-with-x`.
fn match_kind(arguments: &FieldTable) -> (bool, bool) {
    match arguments.inner().get("x-match").and_then(string_bytes) {
        Some(b"any") => (true, false),
        Some(b"all-with-x") => (false, true),
        Some(b"any-with-x") => (true, true),
        _ => (false, false),
    }
}

/// Validates a binding's x-match argument at bind time: Ok(()) or Err(text) where text is
/// RabbitMQ's exact wording for the 406 PRECONDITION_FAILED it sends (e.g. for x-match = "foo").
///
/// The text is the detail only, without the `PRECONDITION_FAILED - ` prefix (warren's
/// `AmqpError::precondition` adds it). Values are printed the way Erlang's `~tp` prints them
/// (`<<"foo">>`, `signedint`, `5`), minus `~tp`'s line wrapping of very long terms.
pub fn validate_binding_arguments(arguments: &FieldTable) -> Result<(), String> {
    let Some(value) = arguments.inner().get("x-match") else {
        // RabbitMQ: "spec is vague on whether it can be omitted but in practice it's useful".
        return Ok(());
    };
    match string_bytes(value) {
        Some(b"all" | b"any" | b"all-with-x" | b"any-with-x") => Ok(()),
        Some(other) => Err(format!(
            "Invalid x-match field value {}; expected all, any, all-with-x, or any-with-x",
            erl_binary(other)
        )),
        None => Err(format!(
            "Invalid x-match field type {} (value {}); expected longstr",
            type_name(value),
            erl_value(value)
        )),
    }
}

struct Binding {
    arguments: FieldTable,
    any: bool,
    with_x: bool,
}

impl Binding {
    fn matches(&self, headers: &FieldTable) -> bool {
        let any = self.any;
        for (key, pattern) in self.arguments.inner() {
            let key = key_str(key);
            if key == "x-match" || (!self.with_x && key.starts_with("x-")) {
                continue;
            }
            let hit = match headers.inner().get(key) {
                None => false,
                Some(_) if matches!(pattern, AMQPValue::Void) => true,
                Some(value) => erl_eq(pattern, value),
            };
            // Same short-circuits as RabbitMQ: `all` fails on the first miss, `any` succeeds
            // on the first hit.
            if hit == any {
                return any;
            }
        }
        !any
    }
}

/// Bindings of one destination. Grouping by destination makes "each dest once per call" free
/// and needs only `D: Eq` (no `Hash`).
struct DestBindings<D> {
    dest: D,
    bindings: Vec<Binding>,
}

/// Headers-exchange bindings: match message headers against binding arguments with x-match
/// all/any/all-with-x/any-with-x as RabbitMQ does.
///
/// Binding identity is `(dest, arguments)` with arguments compared exactly (same types, same
/// values), as RabbitMQ compares stored binding records. `bind` does not validate: call
/// [`validate_binding_arguments`] first.
pub struct HeadersBindings<D> {
    dests: Vec<DestBindings<D>>,
    count: usize,
}

impl<D: Clone + Eq> Default for HeadersBindings<D> {
    fn default() -> Self {
        Self::new()
    }
}

impl<D: Clone + Eq> HeadersBindings<D> {
    pub fn new() -> Self {
        HeadersBindings {
            dests: Vec::new(),
            count: 0,
        }
    }

    /// Number of distinct `(dest, arguments)` bindings.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds the binding; returns true if `(dest, arguments)` was not bound before.
    pub fn bind(&mut self, arguments: &FieldTable, dest: D) -> bool {
        let (any, with_x) = match_kind(arguments);
        let binding = Binding {
            arguments: arguments.clone(),
            any,
            with_x,
        };
        match self.dests.iter_mut().find(|e| e.dest == dest) {
            Some(entry) => {
                if entry
                    .bindings
                    .iter()
                    .any(|b| same_table(&b.arguments, arguments))
                {
                    return false;
                }
                entry.bindings.push(binding);
            }
            None => self.dests.push(DestBindings {
                dest,
                bindings: vec![binding],
            }),
        }
        self.count += 1;
        true
    }

    /// Removes the binding; returns true if it existed.
    pub fn unbind(&mut self, arguments: &FieldTable, dest: &D) -> bool {
        let Some(i) = self.dests.iter().position(|e| &e.dest == dest) else {
            return false;
        };
        let bindings = &mut self.dests[i].bindings;
        let Some(j) = bindings
            .iter()
            .position(|b| same_table(&b.arguments, arguments))
        else {
            return false;
        };
        bindings.swap_remove(j);
        if bindings.is_empty() {
            self.dests.swap_remove(i);
        }
        self.count -= 1;
        true
    }

    /// Pushes onto `out` every destination with at least one matching binding, once per call.
    /// `None` (no headers property) behaves as an empty table, as in RabbitMQ.
    pub fn route(&self, headers: Option<&FieldTable>, out: &mut Vec<D>) {
        let empty = FieldTable::default();
        let headers = headers.unwrap_or(&empty);
        for entry in &self.dests {
            if entry.bindings.iter().any(|b| b.matches(headers)) {
                out.push(entry.dest.clone());
            }
        }
    }
}

// ---- Erlang term semantics -------------------------------------------------------------------

/// A decoded value as the Erlang term RabbitMQ holds, reduced to what `==` distinguishes.
enum Term<'a> {
    Int(i128),
    Float(f64),
    Bool(bool),
    Undefined,
    Decimal(u8, u32),
    Binary(&'a [u8]),
    Array(&'a [AMQPValue]),
    Table(&'a FieldTable),
}

fn term(v: &AMQPValue) -> Term<'_> {
    match v {
        AMQPValue::Boolean(b) => Term::Bool(*b),
        AMQPValue::ShortShortInt(i) => Term::Int((*i).into()),
        AMQPValue::ShortShortUInt(i) => Term::Int((*i).into()),
        AMQPValue::ShortInt(i) => Term::Int((*i).into()),
        AMQPValue::ShortUInt(i) => Term::Int((*i).into()),
        AMQPValue::LongInt(i) => Term::Int((*i).into()),
        AMQPValue::LongUInt(i) => Term::Int((*i).into()),
        AMQPValue::LongLongInt(i) => Term::Int((*i).into()),
        AMQPValue::Timestamp(t) => Term::Int((*t).into()),
        AMQPValue::Float(f) => Term::Float((*f).into()),
        AMQPValue::Double(d) => Term::Float(*d),
        AMQPValue::DecimalValue(DecimalValue { scale, value }) => Term::Decimal(*scale, *value),
        AMQPValue::ShortString(s) => Term::Binary(s.as_str().as_bytes()),
        AMQPValue::LongString(s) => Term::Binary(s.as_bytes()),
        AMQPValue::ByteArray(b) => Term::Binary(b.as_slice()),
        AMQPValue::FieldArray(a) => Term::Array(a.as_slice()),
        AMQPValue::FieldTable(t) => Term::Table(t),
        AMQPValue::Void => Term::Undefined,
    }
}

/// Erlang `==` between an integer and a float is exact (the float is compared as an integer
/// once it is beyond 2^53, the integer as a float below), i.e. equal only for the same number.
fn int_eq_float(i: i128, f: f64) -> bool {
    // Every i128 we build lies in [-2^63, 2^64); outside that no float can equal it, and inside
    // it `f as i128` is exact for integral `f`.
    f.fract() == 0.0 && f.abs() < 18_446_744_073_709_551_616.0 && f as i128 == i
}

/// Erlang `==` on the decoded values of two fields (types ignored), as in RabbitMQ's
/// `PV == DV`.
fn erl_eq(a: &AMQPValue, b: &AMQPValue) -> bool {
    match (term(a), term(b)) {
        (Term::Int(x), Term::Int(y)) => x == y,
        (Term::Float(x), Term::Float(y)) => x == y,
        (Term::Int(i), Term::Float(f)) | (Term::Float(f), Term::Int(i)) => int_eq_float(i, f),
        (Term::Bool(x), Term::Bool(y)) => x == y,
        (Term::Undefined, Term::Undefined) => true,
        (Term::Decimal(s1, v1), Term::Decimal(s2, v2)) => s1 == s2 && v1 == v2,
        (Term::Binary(x), Term::Binary(y)) => x == y,
        // Arrays are lists of {Type, Value}; tables lists of {Key, Type, Value}.
        (Term::Array(x), Term::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| typed_eq(p, q))
        }
        // RabbitMQ compares nested tables in wire order; FieldTable is a sorted map, so two tables
        // with the same entries in a different order (unequal in RabbitMQ) are equal here.
        (Term::Table(x), Term::Table(y)) => {
            x.inner().len() == y.inner().len()
                && x.inner()
                    .iter()
                    .zip(y.inner())
                    .all(|((k1, v1), (k2, v2))| k1 == k2 && typed_eq(v1, v2))
        }
        // [] == [] whichever field type produced it.
        (Term::Array(x), Term::Table(y)) | (Term::Table(y), Term::Array(x)) => {
            x.is_empty() && y.inner().is_empty()
        }
        _ => false,
    }
}

/// `==` on nested `{Type, Value}` tuples: the type atoms must be identical.
fn typed_eq(a: &AMQPValue, b: &AMQPValue) -> bool {
    type_name(a) == type_name(b) && erl_eq(a, b)
}

/// Exact identity of binding arguments (same structure, types and values), used for
/// bind/unbind. Floats compare by value, plus bit-identical NaNs so such a binding can be removed.
fn same_value(a: &AMQPValue, b: &AMQPValue) -> bool {
    use AMQPValue as V;
    match (a, b) {
        (V::Float(x), V::Float(y)) => x == y || x.to_bits() == y.to_bits(),
        (V::Double(x), V::Double(y)) => x == y || x.to_bits() == y.to_bits(),
        (V::FieldArray(x), V::FieldArray(y)) => {
            x.as_slice().len() == y.as_slice().len()
                && x.as_slice()
                    .iter()
                    .zip(y.as_slice())
                    .all(|(p, q)| same_value(p, q))
        }
        (V::FieldTable(x), V::FieldTable(y)) => same_table(x, y),
        _ => a == b,
    }
}

fn same_table(a: &FieldTable, b: &FieldTable) -> bool {
    a.inner().len() == b.inner().len()
        && a.inner()
            .iter()
            .zip(b.inner())
            .all(|((k1, v1), (k2, v2))| k1 == k2 && same_value(v1, v2))
}

// ---- Erlang `~tp` printing, for validation messages -------------------------------------------

/// `<<"foo">>`, `<<"héllo"/utf8>>`, or `<<0,1,2>>` when not printable text.
fn erl_binary(bytes: &[u8]) -> String {
    let printable = |c: char| {
        matches!(c, '\n' | '\r' | '\t' | '\x0b' | '\x08' | '\x0c' | '\x1b')
            || (' '..='~').contains(&c)
            || (c >= '\u{a0}' && c != '\u{fffe}' && c != '\u{ffff}')
    };
    match std::str::from_utf8(bytes) {
        Ok("") => "<<>>".to_string(),
        Ok(s) if s.chars().all(printable) => {
            const ESCAPES: [(char, &str); 9] = [
                ('"', "\\\""),
                ('\\', "\\\\"),
                ('\n', "\\n"),
                ('\r', "\\r"),
                ('\t', "\\t"),
                ('\x0b', "\\v"),
                ('\x08', "\\b"),
                ('\x0c', "\\f"),
                ('\x1b', "\\e"),
            ];
            let mut out = String::from("<<\"");
            for c in s.chars() {
                match ESCAPES.iter().find(|(e, _)| *e == c) {
                    Some((_, esc)) => out.push_str(esc),
                    None => out.push(c),
                }
            }
            out + if s.is_ascii() { "\">>" } else { "\"/utf8>>" }
        }
        _ => format!(
            "<<{}>>",
            bytes
                .iter()
                .map(|b| b.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

/// Erlang's shortest round-trip float printing (OTP 24+ `io_lib_format`, `insert_decimal/3`):
/// fixed notation unless the exponent form is no longer, e.g. `1.0`, `0.5`, `100.0`, `1.0e3`,
/// `1.2e3`, `0.001`, `1.0e-4`; always the exponent form from 2^53 up.
fn erl_float(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    if !f.is_finite() {
        return format!("{f}"); // cannot come off the wire into RabbitMQ
    }
    let sci = format!("{:e}", f.abs()); // shortest digits, e.g. "1.2345e5"
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let exp: i64 = exp.parse().unwrap_or(0); // value = d.ddd × 10^exp
    let len = digits.len() as i64;
    let place = exp - len + 1; // value = DIGITS × 10^place
    let exp_cost = exp.to_string().len() as i64 + 2;
    let exp_form = || {
        let (first, rest) = digits.split_at(1);
        format!("{first}.{}e{exp}", if rest.is_empty() { "0" } else { rest })
    };
    let body = if place < 0 {
        if exp >= 0 {
            let (int, frac) = digits.split_at((len + place) as usize);
            format!("{int}.{frac}")
        } else if 2 - place - len <= exp_cost {
            format!("0.{}{digits}", "0".repeat((-place - len) as usize))
        } else {
            exp_form()
        }
    } else {
        let dot = if len == 1 { 1 } else { 0 };
        if exp_cost + dot >= place + 2 && f.abs() < 9_007_199_254_740_992.0 {
            format!("{digits}{}.0", "0".repeat(place as usize))
        } else {
            exp_form()
        }
    };
    if f < 0.0 { format!("-{body}") } else { body }
}

/// A decoded field value as `~tp` prints it.
fn erl_value(v: &AMQPValue) -> String {
    match term(v) {
        Term::Int(i) => i.to_string(),
        Term::Float(f) => erl_float(f),
        Term::Bool(b) => b.to_string(),
        Term::Undefined => "undefined".into(),
        Term::Decimal(s, v) => format!("{{{s},{v}}}"),
        Term::Binary(b) => erl_binary(b),
        Term::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|i| format!("{{{},{}}}", type_name(i), erl_value(i)))
                .collect();
            format!("[{}]", parts.join(","))
        }
        Term::Table(t) => {
            let entry = |(k, i): (&ShortString, &AMQPValue)| {
                format!(
                    "{{{},{},{}}}",
                    erl_binary(key_str(k).as_bytes()),
                    type_name(i),
                    erl_value(i)
                )
            };
            format!(
                "[{}]",
                t.inner().iter().map(entry).collect::<Vec<_>>().join(",")
            )
        }
    }
}

#[cfg(test)]
#[path = "headers_tests.rs"]
mod tests;
