//! `ShortStr`: an AMQP short string kept as a slice of the read buffer (no allocation), checked
//! to be UTF-8 once when decoded.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct ShortStr(Bytes);

impl ShortStr {
    /// Wraps bytes that must be UTF-8 and at most 255 long; `None` otherwise.
    pub fn from_bytes(bytes: Bytes) -> Option<Self> {
        (bytes.len() <= 255 && std::str::from_utf8(&bytes).is_ok()).then_some(ShortStr(bytes))
    }

    /// From a static string (truncation is the caller's concern; longer strings are refused).
    pub fn from_static(s: &'static str) -> Option<Self> {
        Self::from_bytes(Bytes::from_static(s.as_bytes()))
    }

    /// The bytes, as a cheap clone of the buffer slice.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // Checked in every constructor.
        std::str::from_utf8(&self.0).unwrap_or_default()
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
