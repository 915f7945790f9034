//! Password hashes as RabbitMQ keeps them: a 4-byte random salt followed by
//! `H(salt ‖ password)`, where H is the user's hashing algorithm
//! (`rabbit_password_hashing_sha256`, RabbitMQ's default, or `rabbit_password_hashing_sha512`).
//! Definitions exports carry the salted hash in base64 with the algorithm's name, so a user
//! exported from RabbitMQ logs in here unchanged.
//!
//! Owns hashing and verification only; who has which hash is [`super::users`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256, Sha512};

const SALT_LEN: usize = 4;

/// RabbitMQ's password hashing modules that warren understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashingAlgorithm {
    Sha256,
    Sha512,
}

impl HashingAlgorithm {
    /// The module name RabbitMQ's definitions use (`hashing_algorithm`).
    pub fn rabbit_name(self) -> &'static str {
        match self {
            HashingAlgorithm::Sha256 => "rabbit_password_hashing_sha256",
            HashingAlgorithm::Sha512 => "rabbit_password_hashing_sha512",
        }
    }

    pub fn from_rabbit_name(name: &str) -> Option<HashingAlgorithm> {
        match name {
            "rabbit_password_hashing_sha256" => Some(HashingAlgorithm::Sha256),
            "rabbit_password_hashing_sha512" => Some(HashingAlgorithm::Sha512),
            _ => None,
        }
    }

    fn digest(self, salt: &[u8], password: &[u8]) -> Vec<u8> {
        match self {
            HashingAlgorithm::Sha256 => {
                let mut h = Sha256::new();
                h.update(salt);
                h.update(password);
                h.finalize().to_vec()
            }
            HashingAlgorithm::Sha512 => {
                let mut h = Sha512::new();
                h.update(salt);
                h.update(password);
                h.finalize().to_vec()
            }
        }
    }

    fn digest_len(self) -> usize {
        match self {
            HashingAlgorithm::Sha256 => 32,
            HashingAlgorithm::Sha512 => 64,
        }
    }
}

/// `salt ‖ H(salt ‖ password)` and the H it was made with.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    algorithm: HashingAlgorithm,
    salted: Vec<u8>,
}

impl std::fmt::Debug for PasswordHash {
    /// Never prints the hash itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PasswordHash({})", self.algorithm.rabbit_name())
    }
}

impl PasswordHash {
    /// Hashes `password` with a fresh random salt.
    pub fn new(algorithm: HashingAlgorithm, password: &str) -> PasswordHash {
        let salt: [u8; SALT_LEN] = rand::random();
        PasswordHash::with_salt(algorithm, salt, password)
    }

    pub fn with_salt(
        algorithm: HashingAlgorithm,
        salt: [u8; SALT_LEN],
        password: &str,
    ) -> PasswordHash {
        let mut salted = salt.to_vec();
        salted.extend_from_slice(&algorithm.digest(&salt, password.as_bytes()));
        PasswordHash { algorithm, salted }
    }

    /// The stored form (`salt ‖ digest`), checked for the algorithm's length.
    pub fn from_bytes(algorithm: HashingAlgorithm, salted: Vec<u8>) -> Result<Self, String> {
        let expected = SALT_LEN + algorithm.digest_len();
        if salted.len() != expected {
            return Err(format!(
                "a {} password hash is {expected} bytes, not {}",
                algorithm.rabbit_name(),
                salted.len()
            ));
        }
        Ok(PasswordHash { algorithm, salted })
    }

    /// The base64 form of RabbitMQ's definitions (`password_hash`).
    pub fn from_base64(algorithm: HashingAlgorithm, text: &str) -> Result<Self, String> {
        let salted = STANDARD
            .decode(text)
            .map_err(|e| format!("password_hash is not base64: {e}"))?;
        PasswordHash::from_bytes(algorithm, salted)
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(&self.salted)
    }

    pub fn algorithm(&self) -> HashingAlgorithm {
        self.algorithm
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.salted
    }

    /// True if `password` is the one hashed. A blank password never matches (RabbitMQ's
    /// internal backend refuses blank passwords whatever is stored).
    pub fn verify(&self, password: &str) -> bool {
        if password.is_empty() {
            return false;
        }
        let (salt, digest) = self.salted.split_at(SALT_LEN.min(self.salted.len()));
        let candidate = self.algorithm.digest(salt, password.as_bytes());
        // Constant time: a login must not learn how much of the hash matched.
        candidate.len() == digest.len()
            && candidate
                .iter()
                .zip(digest)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_rabbitmqs_documented_example() {
        // RabbitMQ's password guide: salt 908D C60A, password "test12".
        let hash =
            PasswordHash::with_salt(HashingAlgorithm::Sha256, [0x90, 0x8D, 0xC6, 0x0A], "test12");
        assert_eq!(
            hash.to_base64(),
            "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR"
        );
        assert!(hash.verify("test12"));
        assert!(!hash.verify("test13"));
    }

    #[test]
    fn sha512_hashes_round_trip_through_base64() {
        let hash = PasswordHash::new(HashingAlgorithm::Sha512, "s3cret");
        assert_eq!(hash.as_bytes().len(), 4 + 64);
        let again = PasswordHash::from_base64(HashingAlgorithm::Sha512, &hash.to_base64()).unwrap();
        assert!(again.verify("s3cret"));
        assert!(!again.verify("s3cre"));
    }

    #[test]
    fn blank_passwords_and_wrong_lengths_are_refused() {
        let hash = PasswordHash::new(HashingAlgorithm::Sha256, "x");
        assert!(!hash.verify(""));
        assert!(PasswordHash::from_base64(HashingAlgorithm::Sha512, &hash.to_base64()).is_err());
        assert!(PasswordHash::from_base64(HashingAlgorithm::Sha256, "not base64!").is_err());
    }
}
