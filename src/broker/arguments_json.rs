//! AMQP field tables (queue, exchange and binding arguments, message headers) as JSON, the way
//! RabbitMQ's management API and definitions export write them: numbers, strings, booleans,
//! lists, objects. The other direction, JSON to a table, is
//! `tenancy::definitions_file::table`.

use serde_json::{Map, Value};

/// Nesting deeper than this is shown as null (tables come from peers; the codec bounds them
/// already, this keeps the rendering bounded on its own).
const MAX_DEPTH: usize = 32;

/// AMQP arguments as RabbitMQ's API shows them: numbers, strings, booleans, lists, objects.
pub fn table_json(table: &amq_protocol::types::FieldTable) -> Value {
    table_at(table, 0)
}

fn table_at(table: &amq_protocol::types::FieldTable, depth: usize) -> Value {
    table
        .inner()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), value_at(v, depth + 1)))
        .collect::<Map<_, _>>()
        .into()
}

fn value_at(v: &amq_protocol::types::AMQPValue, depth: usize) -> Value {
    use amq_protocol::types::AMQPValue as V;
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    match v {
        V::Boolean(b) => (*b).into(),
        V::ShortShortInt(n) => (*n).into(),
        V::ShortShortUInt(n) => (*n).into(),
        V::ShortInt(n) => (*n).into(),
        V::ShortUInt(n) => (*n).into(),
        V::LongInt(n) => (*n).into(),
        V::LongUInt(n) => (*n).into(),
        V::LongLongInt(n) => (*n).into(),
        V::Timestamp(n) => (*n).into(),
        V::Float(n) => f64::from(*n).into(),
        V::Double(n) => (*n).into(),
        V::DecimalValue(d) => (f64::from(d.value) / 10f64.powi(i32::from(d.scale))).into(),
        V::ShortString(s) => s.as_str().into(),
        V::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into(),
        V::ByteArray(b) => String::from_utf8_lossy(b.as_slice()).into(),
        V::FieldArray(items) => items
            .as_slice()
            .iter()
            .map(|item| value_at(item, depth + 1))
            .collect(),
        V::FieldTable(t) => table_at(t, depth),
        V::Void => Value::Null,
    }
}
