//! SASL response parsing for the mechanisms warren offers: PLAIN and AMQPLAIN.

use amq_protocol::types::AMQPValue;
use amq_protocol::types::parsing::parse_field_table;

use super::AuthError;

/// Extracts (user, password) from a start-ok response.
pub fn parse_response(mechanism: &str, response: &[u8]) -> Result<(String, String), AuthError> {
    match mechanism {
        // authzid NUL authcid NUL password, where RabbitMQ takes no authzid: a response that
        // does not start with NUL does not parse there.
        "PLAIN" => {
            let mut parts = response.split(|b| *b == 0);
            let (user, password) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some([]), Some(u), Some(p), None) => (u, p),
                _ => return Err(AuthError::Malformed),
            };
            credentials(user, password)
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
                Some(AMQPValue::LongString(s)) => Ok(s.as_bytes().to_vec()),
                Some(AMQPValue::ShortString(s)) => Ok(s.as_str().as_bytes().to_vec()),
                _ => Err(AuthError::Malformed),
            };
            credentials(&field("LOGIN")?, &field("PASSWORD")?)
        }
        other => Err(AuthError::UnknownMechanism(other.to_string())),
    }
}

/// A well-formed response's user and password. To RabbitMQ they are bytes: a name or password
/// that is not UTF-8 matches no user, refused as bad credentials (403), not as a malformed
/// response.
fn credentials(user: &[u8], password: &[u8]) -> Result<(String, String), AuthError> {
    match (std::str::from_utf8(user), std::str::from_utf8(password)) {
        (Ok(user), Ok(password)) => Ok((user.to_string(), password.to_string())),
        _ => Err(AuthError::BadCredentials(
            String::from_utf8_lossy(user).into_owned(),
        )),
    }
}
