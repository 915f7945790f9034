//! Users and authentication: SASL PLAIN and AMQPLAIN responses checked against
//! RabbitMQ-compatible password hashes (`rabbit_password_hashing_sha256`: base64 of a 4-byte
//! salt followed by SHA-256(salt ‖ password)), and the rule that `guest` may log in from loopback
//! only.

mod mechanisms;

use std::collections::HashMap;
use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

pub use mechanisms::{SUPPORTED_MECHANISMS, parse_response};

pub struct User {
    pub name: String,
    /// `salt ‖ sha256(salt ‖ password)`, as RabbitMQ stores it (base64 in definitions).
    password_hash: Vec<u8>,
    /// RabbitMQ's `loopback_users`: this user may only connect from 127.0.0.0/8 or ::1.
    pub loopback_only: bool,
}

/// Why a login was refused; the text goes into connection.close 403 and the log.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthError {
    UnknownMechanism(String),
    Malformed,
    BadCredentials,
    LoopbackOnly(String),
}

#[derive(Default)]
pub struct Users {
    users: HashMap<String, User>,
}

impl Users {
    /// The default set: `guest`/`guest`, loopback only.
    pub fn with_default_user(name: &str, password: &str) -> Self {
        let mut users = Users::default();
        users.add(name, password, name == "guest");
        users
    }

    pub fn add(&mut self, name: &str, password: &str, loopback_only: bool) {
        let salt: [u8; 4] = rand::random();
        let user = User {
            name: name.to_string(),
            password_hash: hash_password(&salt, password),
            loopback_only,
        };
        self.users.insert(name.to_string(), user);
    }

    /// Checks a SASL response; returns the authenticated user name.
    pub fn authenticate(
        &self,
        mechanism: &str,
        response: &[u8],
        peer: IpAddr,
    ) -> Result<String, AuthError> {
        let (name, password) = parse_response(mechanism, response)?;
        let user = self.users.get(&name).ok_or(AuthError::BadCredentials)?;
        if !verify_password(&user.password_hash, &password) {
            return Err(AuthError::BadCredentials);
        }
        if user.loopback_only && !peer.is_loopback() {
            return Err(AuthError::LoopbackOnly(name));
        }
        Ok(name)
    }

    /// SASL EXTERNAL: the name comes from the TLS client certificate, which the listener has
    /// verified, so there is no password; the user must exist, and `loopback_only` still holds.
    pub fn authenticate_external(&self, name: &str, peer: IpAddr) -> Result<String, AuthError> {
        let user = self.users.get(name).ok_or(AuthError::BadCredentials)?;
        if user.loopback_only && !peer.is_loopback() {
            return Err(AuthError::LoopbackOnly(user.name.clone()));
        }
        Ok(user.name.clone())
    }
}

/// `salt ‖ sha256(salt ‖ password)`.
pub fn hash_password(salt: &[u8; 4], password: &str) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(password.as_bytes());
    let mut out = salt.to_vec();
    out.extend_from_slice(&hasher.finalize());
    out
}

/// The base64 form RabbitMQ's definitions export uses for `password_hash`.
pub fn encode_hash(hash: &[u8]) -> String {
    STANDARD.encode(hash)
}

fn verify_password(stored: &[u8], password: &str) -> bool {
    let Some(salt) = stored.get(..4).and_then(|s| <[u8; 4]>::try_from(s).ok()) else {
        return false;
    };
    let candidate = hash_password(&salt, password);
    // Constant-time comparison: a login must not leak how much of the hash matched.
    candidate.len() == stored.len()
        && candidate
            .iter()
            .zip(stored)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn guest_logs_in_with_plain_from_loopback_only() {
        let users = Users::with_default_user("guest", "guest");
        assert_eq!(
            users.authenticate("PLAIN", b"\0guest\0guest", LOOPBACK),
            Ok("guest".into())
        );
        assert_eq!(
            users.authenticate("PLAIN", b"\0guest\0wrong", LOOPBACK),
            Err(AuthError::BadCredentials)
        );
        let remote = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(
            users.authenticate("PLAIN", b"\0guest\0guest", remote),
            Err(AuthError::LoopbackOnly("guest".into()))
        );
    }

    #[test]
    fn rabbitmq_hash_format_is_salt_then_sha256() {
        // RabbitMQ's documented example: salt 908D C60A, password "test12".
        let hash = hash_password(&[0x90, 0x8D, 0xC6, 0x0A], "test12");
        assert_eq!(
            encode_hash(&hash),
            "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR"
        );
    }
}
