//! What a delayed-message exchange reads, as RabbitMQ's delayed-message plugin does: the
//! `x-delayed-type` argument at declaration and the `x-delay` header of a published message;
//! and the header rewrites schedules need (retries count attempts in `x-delivery-count`, half
//! messages lose their `x-half*` headers).
//!
//! Pure functions over tables and properties; scheduling is schedule.rs's business.

use amq_protocol::types::{AMQPValue, FieldTable};
use warren_protocol::field_table::{self, Writer};
use warren_protocol::{AmqpError, Properties};

use crate::broker::exchange::ExchangeKind;

/// The kind a delayed exchange routes as, from its `x-delayed-type` argument.
pub fn delayed_type(arguments: &FieldTable) -> Option<ExchangeKind> {
    let name = match arguments.inner().get("x-delayed-type")? {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_string(),
        _ => return None,
    };
    ExchangeKind::parse(&name).filter(|k| *k != ExchangeKind::DelayedMessage)
}

/// The plugin's checks of `x-delayed-type`, in its words: missing or not a string is a 406, as
/// is naming `x-delayed-message` itself; a type nobody knows is RabbitMQ's 503 for any unknown
/// exchange type (a connection error).
pub fn check_arguments(arguments: &FieldTable) -> Result<(), AmqpError> {
    let name = match arguments.inner().get("x-delayed-type") {
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        Some(AMQPValue::ShortString(s)) => s.as_str().to_string(),
        _ => {
            return Err(AmqpError::precondition(
                "Invalid argument, 'x-delayed-type' must be an existing exchange type",
            ));
        }
    };
    match ExchangeKind::parse(&name) {
        Some(ExchangeKind::DelayedMessage) => Err(AmqpError::precondition(
            "Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'",
        )),
        Some(_) => Ok(()),
        None => Err(AmqpError::command_invalid(format_args!(
            "unknown exchange type '{name}'"
        ))),
    }
}

/// The delay a message asks for, in ms, when it asks for one: an `x-delay` header above zero.
/// As the plugin: integers of any width, floats truncated, strings holding an integer; anything
/// else, zero or negative means no delay. Unlike the plugin (which stops at 2^32 - 1 ms and
/// routes longer delays at once), any positive delay counts.
pub fn x_delay(properties: &Properties) -> Option<u64> {
    if !properties.has_header_key(&["x-delay"]) {
        return None;
    }
    let table = properties.headers_raw()?;
    let entries = field_table::entries(table)?;
    let value = field_table::get(&entries, "x-delay")?;
    let delay = match value.first()? {
        b'f' => f32::from_be_bytes(value.get(1..5)?.try_into().ok()?) as i64,
        b'd' => f64::from_be_bytes(value.get(1..9)?.try_into().ok()?) as i64,
        b'D' => {
            let scale = *value.get(1)? as u32;
            let digits = u32::from_be_bytes(value.get(2..6)?.try_into().ok()?) as i64;
            digits / 10i64.checked_pow(scale).unwrap_or(i64::MAX)
        }
        b'S' => std::str::from_utf8(field_table::long_str(value)?)
            .ok()?
            .trim()
            .parse::<i64>()
            .ok()?,
        _ => field_table::integer(value)?,
    };
    u64::try_from(delay).ok().filter(|d| *d > 0)
}

/// `properties` with the integer header `key` set to `value` (in place of any it had): a
/// signed 32-bit integer when it fits, else 64-bit. `None` if the headers do not scan.
pub fn with_int_header(properties: &Properties, key: &[u8], value: i64) -> Option<Properties> {
    let entries = match properties.headers_raw() {
        Some(table) => field_table::entries(table)?,
        None => Vec::new(),
    };
    let mut w = Writer::new();
    let open = w.begin_table();
    w.entries_where(&entries, |k| k != key);
    w.key(key);
    match i32::try_from(value) {
        Ok(n) => {
            w.raw(b"I").raw(&n.to_be_bytes());
        }
        Err(_) => {
            w.long_long(value);
        }
    }
    w.end(open)?;
    properties.with_headers(&w.out, &[])
}

/// `properties` without the headers whose keys `drop` accepts. `None` if the headers do not
/// scan; the same properties if there are none.
pub fn without_headers(
    properties: &Properties,
    drop: impl Fn(&[u8]) -> bool,
) -> Option<Properties> {
    let Some(table) = properties.headers_raw() else {
        return Some(properties.clone());
    };
    let entries = field_table::entries(table)?;
    let mut w = Writer::new();
    let open = w.begin_table();
    w.entries_where(&entries, |k| !drop(k));
    w.end(open)?;
    properties.with_headers(&w.out, &[])
}

/// The value of header `key`, type octet first, if there is one.
pub fn header_value<'a>(properties: &'a Properties, key: &str) -> Option<&'a [u8]> {
    if !properties.has_header_key(&[key]) {
        return None;
    }
    let entries = field_table::entries(properties.headers_raw()?)?;
    field_table::get(&entries, key)
}

#[cfg(test)]
mod tests {
    use amq_protocol::protocol::BasicProperties;
    use amq_protocol::types::{DecimalValue, LongString};

    use super::*;

    fn with_delay(value: AMQPValue) -> Properties {
        let mut headers = FieldTable::default();
        headers.insert("other".into(), AMQPValue::LongString("kept".into()));
        headers.insert("x-delay".into(), value);
        Properties::from_basic(&BasicProperties::default().with_headers(headers))
    }

    #[test]
    fn x_delay_reads_numbers_of_every_kind_and_numeric_strings() {
        let cases = [
            (AMQPValue::LongInt(5000), Some(5000)),
            (AMQPValue::ShortShortUInt(7), Some(7)),
            (AMQPValue::LongLongInt(1 << 40), Some(1 << 40)),
            (AMQPValue::Double(1500.9), Some(1500)),
            (AMQPValue::Float(2.5), Some(2)),
            (
                AMQPValue::DecimalValue(DecimalValue {
                    scale: 1,
                    value: 123,
                }),
                Some(12),
            ),
            (AMQPValue::LongString(LongString::from("250")), Some(250)),
            (AMQPValue::LongString(LongString::from("soon")), None),
            (AMQPValue::LongInt(0), None),
            (AMQPValue::LongInt(-5), None),
            (AMQPValue::Boolean(true), None),
        ];
        for (value, expected) in cases {
            assert_eq!(x_delay(&with_delay(value.clone())), expected, "{value:?}");
        }
        assert_eq!(
            x_delay(&Properties::from_basic(&BasicProperties::default())),
            None
        );
    }

    #[test]
    fn an_int_header_replaces_the_one_there_and_keeps_the_others() {
        let p = with_int_header(&with_delay(AMQPValue::LongInt(5000)), b"x-delay", -7).unwrap();
        let headers = p.headers().unwrap();
        assert_eq!(
            headers.inner().get("x-delay"),
            Some(&AMQPValue::LongInt(-7))
        );
        assert_eq!(
            headers.inner().get("other"),
            Some(&AMQPValue::LongString("kept".into()))
        );
        let long = with_int_header(&p, b"n", 1 << 40).unwrap();
        assert_eq!(
            long.headers().unwrap().inner().get("n"),
            Some(&AMQPValue::LongLongInt(1 << 40))
        );
        let none = without_headers(&long, |k| k == b"n" || k == b"x-delay").unwrap();
        assert_eq!(none.headers().unwrap().inner().len(), 1);
    }

    #[test]
    fn declarations_are_checked_as_the_plugin_does() {
        let args = |t: Option<&str>| {
            let mut a = FieldTable::default();
            if let Some(t) = t {
                a.insert("x-delayed-type".into(), AMQPValue::LongString(t.into()));
            }
            a
        };
        assert!(check_arguments(&args(Some("topic"))).is_ok());
        assert_eq!(
            delayed_type(&args(Some("topic"))),
            Some(ExchangeKind::Topic)
        );
        let missing = check_arguments(&args(None)).unwrap_err();
        assert_eq!(missing.code, 406);
        assert!(
            missing
                .text
                .contains("'x-delayed-type' must be an existing exchange type")
        );
        let itself = check_arguments(&args(Some("x-delayed-message"))).unwrap_err();
        assert_eq!(itself.code, 406);
        let unknown = check_arguments(&args(Some("x-consistent-hash"))).unwrap_err();
        assert_eq!(unknown.code, 503);
        assert!(
            unknown
                .text
                .ends_with("unknown exchange type 'x-consistent-hash'")
        );
    }
}
