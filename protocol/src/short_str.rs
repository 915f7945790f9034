//! `ShortStr`: an AMQP short string (UTF-8, at most 255 bytes), checked once when decoded.
//!
//! Kept inline (no allocation, no reference count) up to 24 bytes — exchange names and routing
//! keys usually are — and on the heap beyond. An earlier version held a `Bytes` slice of the read
//! buffer; its reference-count traffic (two clones and two drops per publish) showed in profiles,
//! and a short copy is cheaper.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;
use compact_str::CompactString;

#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct ShortStr(CompactString);

impl ShortStr {
    /// Copies bytes that must be UTF-8 and at most 255 long; `None` otherwise.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > 255 {
            return None;
        }
        std::str::from_utf8(bytes)
            .ok()
            .map(|s| ShortStr(CompactString::new(s)))
    }

    pub fn from_bytes(bytes: Bytes) -> Option<Self> {
        Self::from_slice(&bytes)
    }

    /// From a static string (longer than 255 bytes is refused).
    pub fn from_static(s: &'static str) -> Option<Self> {
        Self::from_slice(s.as_bytes())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl Deref for ShortStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for ShortStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ShortStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
