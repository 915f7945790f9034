//! Reply codes of AMQP 0-9-1 and the one error type the broker uses to close a channel or a
//! connection. Soft errors close the channel (`channel.close`); hard errors close the connection
//! (`connection.close`, then the socket). Texts follow RabbitMQ's form, `CODE_NAME - detail`,
//! because clients and their test suites match on them.

use std::fmt;

pub const REPLY_SUCCESS: u16 = 200;
pub const CONTENT_TOO_LARGE: u16 = 311;
pub const NO_ROUTE: u16 = 312;
pub const NO_CONSUMERS: u16 = 313;
pub const CONNECTION_FORCED: u16 = 320;
pub const INVALID_PATH: u16 = 402;
pub const ACCESS_REFUSED: u16 = 403;
pub const NOT_FOUND: u16 = 404;
pub const RESOURCE_LOCKED: u16 = 405;
pub const PRECONDITION_FAILED: u16 = 406;
pub const FRAME_ERROR: u16 = 501;
pub const SYNTAX_ERROR: u16 = 502;
pub const COMMAND_INVALID: u16 = 503;
pub const CHANNEL_ERROR: u16 = 504;
pub const UNEXPECTED_FRAME: u16 = 505;
pub const RESOURCE_ERROR: u16 = 506;
pub const NOT_ALLOWED: u16 = 530;
pub const NOT_IMPLEMENTED: u16 = 540;
pub const INTERNAL_ERROR: u16 = 541;

/// The name RabbitMQ prints before ` - ` in reply texts.
pub fn code_name(code: u16) -> &'static str {
    match code {
        REPLY_SUCCESS => "OK",
        CONTENT_TOO_LARGE => "CONTENT_TOO_LARGE",
        NO_ROUTE => "NO_ROUTE",
        NO_CONSUMERS => "NO_CONSUMERS",
        CONNECTION_FORCED => "CONNECTION_FORCED",
        INVALID_PATH => "INVALID_PATH",
        ACCESS_REFUSED => "ACCESS_REFUSED",
        NOT_FOUND => "NOT_FOUND",
        RESOURCE_LOCKED => "RESOURCE_LOCKED",
        PRECONDITION_FAILED => "PRECONDITION_FAILED",
        FRAME_ERROR => "FRAME_ERROR",
        SYNTAX_ERROR => "SYNTAX_ERROR",
        COMMAND_INVALID => "COMMAND_INVALID",
        CHANNEL_ERROR => "CHANNEL_ERROR",
        UNEXPECTED_FRAME => "UNEXPECTED_FRAME",
        RESOURCE_ERROR => "RESOURCE_ERROR",
        NOT_ALLOWED => "NOT_ALLOWED",
        NOT_IMPLEMENTED => "NOT_IMPLEMENTED",
        INTERNAL_ERROR => "INTERNAL_ERROR",
        _ => "UNKNOWN",
    }
}

/// Whether an error closes the channel or the whole connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorScope {
    Channel,
    Connection,
}

/// An AMQP error about to be sent as channel.close or connection.close.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmqpError {
    pub code: u16,
    /// Full reply text, already in RabbitMQ's `NAME - detail` form.
    pub text: String,
    /// The method that caused it (0, 0 when none).
    pub class_id: u16,
    pub method_id: u16,
}

impl AmqpError {
    /// An error whose text is `CODE_NAME - detail`.
    pub fn new(code: u16, detail: impl fmt::Display) -> Self {
        AmqpError {
            code,
            text: format!("{} - {}", code_name(code), detail),
            class_id: 0,
            method_id: 0,
        }
    }

    /// Records the method that caused the error (reported in the close frame).
    pub fn on(mut self, class_id: u16, method_id: u16) -> Self {
        self.class_id = class_id;
        self.method_id = method_id;
        self
    }

    /// Records the method that caused the error (reported in the close frame).
    pub fn on_method(self, method: crate::MethodId) -> Self {
        self.on(method.class, method.method)
    }

    /// Channel-level codes (3xx and 4xx) are soft; everything else closes the connection.
    pub fn scope(&self) -> ErrorScope {
        if (300..500).contains(&self.code) {
            ErrorScope::Channel
        } else {
            ErrorScope::Connection
        }
    }

    pub fn not_found(detail: impl fmt::Display) -> Self {
        Self::new(NOT_FOUND, detail)
    }
    pub fn precondition(detail: impl fmt::Display) -> Self {
        Self::new(PRECONDITION_FAILED, detail)
    }
    pub fn access_refused(detail: impl fmt::Display) -> Self {
        Self::new(ACCESS_REFUSED, detail)
    }
    pub fn resource_locked(detail: impl fmt::Display) -> Self {
        Self::new(RESOURCE_LOCKED, detail)
    }
    pub fn frame_error(detail: impl fmt::Display) -> Self {
        Self::new(FRAME_ERROR, detail)
    }
    pub fn syntax_error(detail: impl fmt::Display) -> Self {
        Self::new(SYNTAX_ERROR, detail)
    }
    pub fn command_invalid(detail: impl fmt::Display) -> Self {
        Self::new(COMMAND_INVALID, detail)
    }
    pub fn channel_error(detail: impl fmt::Display) -> Self {
        Self::new(CHANNEL_ERROR, detail)
    }
    pub fn unexpected_frame(detail: impl fmt::Display) -> Self {
        Self::new(UNEXPECTED_FRAME, detail)
    }
    pub fn not_allowed(detail: impl fmt::Display) -> Self {
        Self::new(NOT_ALLOWED, detail)
    }
    pub fn not_implemented(detail: impl fmt::Display) -> Self {
        Self::new(NOT_IMPLEMENTED, detail)
    }
    pub fn internal(detail: impl fmt::Display) -> Self {
        Self::new(INTERNAL_ERROR, detail)
    }
}

impl fmt::Display for AmqpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

impl std::error::Error for AmqpError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_has_rabbitmq_form_and_scope_follows_code() {
        let e = AmqpError::not_found("no queue 'x' in vhost '/'");
        assert_eq!(e.text, "NOT_FOUND - no queue 'x' in vhost '/'");
        assert_eq!(e.scope(), ErrorScope::Channel);
        assert_eq!(AmqpError::frame_error("x").scope(), ErrorScope::Connection);
        assert_eq!(AmqpError::not_allowed("x").scope(), ErrorScope::Connection);
    }
}
