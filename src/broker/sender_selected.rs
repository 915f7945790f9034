//! Sender-selected distribution, as RabbitMQ does it: a publisher lists extra routing keys in
//! the `CC` and `BCC` headers (arrays of long strings); the message is routed with its routing
//! key and each of those, and reaches every matching queue once. `BCC` is removed from the
//! message before anyone receives it. A `CC`/`BCC` header that is not an array makes the
//! publish a 406, in RabbitMQ's words; array elements that are not strings are ignored.
//!
//! This file reads the headers and rewrites the properties; routing itself is the vhost's.

use amq_protocol::types::parsing::parse_value;
use warren_protocol::field_table::{self, Entry, Writer};
use warren_protocol::{AmqpError, Properties};

use super::field_display::type_name;

/// The extra routing keys of one message.
pub struct SenderSelected {
    /// CC keys, then BCC keys, in header order (duplicates are harmless: queues dedupe).
    pub keys: Vec<String>,
    /// A BCC header is present: deliver [`without_bcc`] of the properties.
    pub has_bcc: bool,
}

/// The `headers` table's entries (none without headers), read in place.
pub fn header_entries(properties: &Properties) -> Vec<Entry<'_>> {
    properties
        .headers_raw()
        .and_then(field_table::entries)
        .unwrap_or_default()
}

/// `None` when the headers select nothing (no CC, no BCC).
pub fn sender_selected(headers: &[Entry]) -> Result<Option<SenderSelected>, AmqpError> {
    let mut selected = SenderSelected {
        keys: Vec::new(),
        has_bcc: false,
    };
    let mut any = false;
    for name in ["CC", "BCC"] {
        let Some(value) = field_table::get(headers, name) else {
            continue;
        };
        let Some(routes) = field_table::array_elements(value) else {
            return Err(AmqpError::precondition(format_args!(
                "invalid message: {{unacceptable_type_in_header,\"{name}\",{}}}",
                raw_type_name(value)
            )));
        };
        any = true;
        selected.has_bcc |= name == "BCC";
        selected.keys.extend(
            routes
                .into_iter()
                .filter_map(field_table::long_str)
                .map(|s| String::from_utf8_lossy(s).into_owned()),
        );
    }
    Ok(any.then_some(selected))
}

/// RabbitMQ's name for the type of an encoded value (for the error above only: it decodes).
fn raw_type_name(value: &[u8]) -> &'static str {
    parse_value(value).map_or("unknown", |(_, v)| type_name(&v))
}

/// The same properties without the `BCC` header.
pub fn without_bcc(properties: &Properties) -> Properties {
    let mut w = Writer::new();
    let table = w.begin_table();
    w.entries_where(&header_entries(properties), |key| key != b"BCC");
    w.end(table)
        .and_then(|()| properties.with_headers(&w.out, &[]))
        // Cannot happen for headers that parsed on the way in; never deliver a BCC anyway.
        .unwrap_or_default()
}
