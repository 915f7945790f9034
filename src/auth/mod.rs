//! Tenancy's model: users ([`users`]) with RabbitMQ-compatible password hashes ([`password`]),
//! their permissions per vhost and topic permissions ([`permissions`]), and [`Auth`], which holds
//! them and makes RabbitMQ's checks (logins, vhost access, resource and topic access).
//!
//! No sockets and no store here: the server calls the checks, the broker's tenancy operations
//! persist changes and then apply them to [`Auth`].

mod mechanisms;
pub mod password;
pub mod permissions;
mod registry;
pub mod users;

pub use mechanisms::parse_response;
pub use password::{HashingAlgorithm, PasswordHash};
pub use permissions::{Access, Permissions, ResourceKind, TopicPermission};
pub use registry::{Auth, AuthError};
pub use users::{User, UserLimits};

#[cfg(test)]
mod tests;
