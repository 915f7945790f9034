//! Server-generated names and the reply texts that name a resource, in RabbitMQ's wording.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `PREFIX` + 22 url-safe base64 characters of randomness, as RabbitMQ makes `amq.gen-…` and
/// `amq.ctag-…` names.
pub fn generate(prefix: &str) -> String {
    let bytes: [u8; 16] = rand::random();
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

pub fn queue_name() -> String {
    generate("amq.gen-")
}

pub fn consumer_tag() -> String {
    generate("amq.ctag-")
}

/// `queue 'q' in vhost '/'`
pub fn queue(name: &str, vhost: &str) -> String {
    format!("queue '{name}' in vhost '{vhost}'")
}

/// `exchange 'x' in vhost '/'`
pub fn exchange(name: &str, vhost: &str) -> String {
    format!("exchange '{name}' in vhost '{vhost}'")
}
