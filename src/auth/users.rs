//! Users as RabbitMQ's internal backend knows them: a name, an optional password hash (a user
//! without one can only log in with EXTERNAL, a client certificate), tags, and per-user limits.
//!
//! Owns the record only; checking logins and permissions is [`super::registry`].

use super::password::PasswordHash;

/// Tags that mean something to warren (the management surface reads them); any other tag is
/// kept as given.
pub const ADMINISTRATOR: &str = "administrator";
pub const IMPERSONATOR: &str = "impersonator";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// `None`: no password; only EXTERNAL logs this user in.
    pub password: Option<PasswordHash>,
    /// `administrator`, `monitoring`, `policymaker`, `management`, `impersonator`, or free-form.
    pub tags: Vec<String>,
    pub limits: UserLimits,
}

/// RabbitMQ's user limits; `None` is no limit (RabbitMQ stores a negative number for that).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserLimits {
    pub max_connections: Option<u64>,
    pub max_channels: Option<u64>,
}

impl User {
    pub fn new(name: &str, password: Option<PasswordHash>, tags: &[&str]) -> User {
        User {
            name: name.to_string(),
            password,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            limits: UserLimits::default(),
        }
    }

    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// May publish with a `user_id` property naming someone else.
    pub fn is_impersonator(&self) -> bool {
        self.has_tag(IMPERSONATOR)
    }
}

/// RabbitMQ's tags as a definitions file writes them: a comma-separated string (3.x) or a
/// list (3.10+ exports either); blanks dropped.
pub fn parse_tags(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}
