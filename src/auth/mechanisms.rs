//! SASL response parsing for the mechanisms warren offers: PLAIN and AMQPLAIN.

use amq_protocol::types::AMQPValue;
use amq_protocol::types::parsing::parse_field_table;

use super::AuthError;

/// As advertised in connection.start's `mechanisms`, space-separated.
pub const SUPPORTED_MECHANISMS: &str = "PLAIN AMQPLAIN";

/// Extracts (user, password) from a start-ok response.
pub fn parse_response(mechanism: &str, response: &[u8]) -> Result<(String, String), AuthError> {
    match mechanism {
        // authzid NUL authcid NUL password
        "PLAIN" => {
            let mut parts = response.split(|b| *b == 0);
            let (_authzid, user, password) =
                match (parts.next(), parts.next(), parts.next(), parts.next()) {
                    (Some(a), Some(u), Some(p), None) => (a, u, p),
                    _ => return Err(AuthError::Malformed),
                };
            Ok((utf8(user)?, utf8(password)?))
        }
        // A field table without its 4-byte length prefix, holding LOGIN and PASSWORD.
        "AMQPLAIN" => {
            let mut framed = (response.len() as u32).to_be_bytes().to_vec();
            framed.extend_from_slice(response);
            // The parser below recurses once per nesting level: refuse deep nesting first.
            if !matches!(warren_protocol::depth::table_end(&framed, 0), Ok(Some(_))) {
                return Err(AuthError::Malformed);
            }
            let (_, table) = parse_field_table(&framed[..]).map_err(|_| AuthError::Malformed)?;
            let field = |k: &str| match table.inner().get(k) {
                Some(AMQPValue::LongString(s)) => utf8(s.as_bytes()),
                Some(AMQPValue::ShortString(s)) => Ok(s.as_str().to_string()),
                _ => Err(AuthError::Malformed),
            };
            Ok((field("LOGIN")?, field("PASSWORD")?))
        }
        other => Err(AuthError::UnknownMechanism(other.to_string())),
    }
}

fn utf8(b: &[u8]) -> Result<String, AuthError> {
    String::from_utf8(b.to_vec()).map_err(|_| AuthError::Malformed)
}
