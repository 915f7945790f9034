//! Sender-selected distribution, as RabbitMQ does it: a publisher lists extra routing keys in
//! the `CC` and `BCC` headers (arrays of long strings); the message is routed with its routing
//! key and each of those, and reaches every matching queue once. `BCC` is removed from the
//! message before anyone receives it. A `CC`/`BCC` header that is not an array makes the
//! publish a 406, in RabbitMQ's words; array elements that are not strings are ignored.
//!
//! This file reads the headers and rewrites the properties; routing itself is the vhost's.

use amq_protocol::types::{AMQPValue, FieldTable};
use warren_protocol::{AmqpError, Properties};

use super::field_display::type_name;

/// The extra routing keys of one message.
pub struct SenderSelected {
    /// CC keys, then BCC keys, in header order (duplicates are harmless: queues dedupe).
    pub keys: Vec<String>,
    /// A BCC header is present: deliver [`without_bcc`] of the properties.
    pub has_bcc: bool,
}

/// `None` when the headers select nothing (no CC, no BCC).
pub fn sender_selected(headers: Option<&FieldTable>) -> Result<Option<SenderSelected>, AmqpError> {
    let Some(headers) = headers else {
        return Ok(None);
    };
    let mut selected = SenderSelected {
        keys: Vec::new(),
        has_bcc: false,
    };
    let mut any = false;
    for name in ["CC", "BCC"] {
        let Some(value) = headers.inner().get(name) else {
            continue;
        };
        let AMQPValue::FieldArray(routes) = value else {
            return Err(AmqpError::precondition(format_args!(
                "invalid message: {{unacceptable_type_in_header,\"{name}\",{}}}",
                type_name(value)
            )));
        };
        any = true;
        selected.has_bcc |= name == "BCC";
        for route in routes.as_slice() {
            if let AMQPValue::LongString(s) = route {
                selected
                    .keys
                    .push(String::from_utf8_lossy(s.as_bytes()).into_owned());
            }
        }
    }
    Ok(any.then_some(selected))
}

/// The same properties without the `BCC` header.
pub fn without_bcc(properties: &Properties) -> Properties {
    let basic = properties.to_basic();
    let headers = basic
        .headers()
        .as_ref()
        .map(|h| without_header(h, "BCC"))
        .unwrap_or_default();
    Properties::from_basic(&basic.with_headers(headers))
}

/// `headers` without the entry `name` (field tables have no remove).
fn without_header(headers: &FieldTable, name: &str) -> FieldTable {
    let mut kept = FieldTable::default();
    for (k, v) in headers.inner() {
        if k.as_str() != name {
            kept.insert(k.clone(), v.clone());
        }
    }
    kept
}
