//! warren-protocol: the AMQP 0-9-1 wire format for warren — bytes in, frames out, no I/O.
//!
//! Built on amq-protocol's generated method types, with three things amq-protocol does not do:
//! frame size checked against `frame_max` from the 7-byte header *before* the payload is buffered,
//! bodies and content-header properties kept as zero-copy `Bytes` slices of the read buffer, and
//! errors mapped to the spec's reply codes instead of panics.
//!
//! - [`codec`]: streaming decode of client frames (partial input waits, bad input is an error).
//! - [`encode`]: server frames into a `BytesMut` write buffer, with hand-written hot-path frames.
//! - [`content`]: method + header + body frames ⇄ one message.
//! - [`field_table`]: encoded field tables read and rewritten as bytes.
//! - [`method`]: names for the methods an error points at.
//! - [`reply`]: reply codes and the soft (channel) / hard (connection) error type.

pub mod codec;
pub mod content;
pub mod depth;
pub mod encode;
pub mod field_table;
pub mod method;
pub mod properties;
pub mod publish;
pub mod reply;
pub mod short_str;

pub use amq_protocol;
pub use codec::{Frame, PROTOCOL_HEADER};
pub use method::MethodId;
pub use properties::Properties;
pub use publish::Publish;
pub use reply::{AmqpError, ErrorScope};
pub use short_str::ShortStr;
