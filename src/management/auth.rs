//! Who is calling: HTTP basic auth against warren's users, then RabbitMQ's tag rules.
//!
//! Any of `management`, `policymaker`, `monitoring`, `administrator` lets a user in (without
//! one, the login fails); what each call needs beyond that is checked by the handler with
//! [`Caller::require`]. Users in `loopback_users` (guest) only from loopback addresses, as over
//! AMQP. Every refusal is a 401 with RabbitMQ's error and reason.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;

use super::Api;
use super::error::ApiError;
use crate::auth::{AuthError, User};

/// The levels of access RabbitMQ's management tags give, weakest first (`policymaker`, between
/// management and administrator beside monitoring, comes with policies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `management`: their own vhosts' objects.
    Management,
    /// `monitoring`: also every connection, channel and node figure.
    Monitoring,
    /// `administrator`: everything.
    Administrator,
}

/// The authenticated user of a request.
pub struct Caller {
    pub user: Arc<User>,
}

impl Caller {
    pub fn name(&self) -> &str {
        &self.user.name
    }

    pub fn is(&self, level: Level) -> bool {
        let has = |tag| self.user.has_tag(tag);
        match level {
            Level::Administrator => has("administrator"),
            Level::Monitoring => has("administrator") || has("monitoring"),
            Level::Management => ["administrator", "monitoring", "policymaker", "management"]
                .iter()
                .any(|tag| has(tag)),
        }
    }

    /// Refuses unless the user's tags give `level` (RabbitMQ's reasons).
    pub fn require(&self, level: Level) -> Result<(), ApiError> {
        if self.is(level) {
            return Ok(());
        }
        Err(ApiError::NotAuthorised(match level {
            Level::Administrator => "Not administrator user",
            Level::Monitoring => "Not monitor user",
            Level::Management => "Not management user",
        }))
    }

    /// Whether the user may see a vhost's objects: administrators and monitors see every
    /// vhost, others those they have permissions in.
    pub fn sees_vhost(&self, api: &Api, vhost: &str) -> bool {
        self.is(Level::Monitoring) || api.broker.auth.permissions(self.name(), vhost).is_some()
    }
}

impl FromRequestParts<Arc<Api>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Self, ApiError> {
        const LOGIN_FAILED: ApiError = ApiError::LoginFailed("Login failed");
        if !parts.headers.contains_key(header::AUTHORIZATION) {
            return Err(ApiError::NoCredentials);
        }
        let (name, password) = basic_credentials(parts).ok_or(LOGIN_FAILED)?;
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip())
            .ok_or(LOGIN_FAILED)?;
        let mut response = Vec::with_capacity(name.len() + password.len() + 2);
        response.push(0);
        response.extend_from_slice(name.as_bytes());
        response.push(0);
        response.extend_from_slice(password.as_bytes());
        let user = match api.broker.auth.authenticate("PLAIN", &response, peer) {
            Ok(user) => user,
            Err(AuthError::LoopbackOnly(_)) => {
                return Err(ApiError::LoginFailed("User can only log in via localhost"));
            }
            Err(_) => return Err(LOGIN_FAILED),
        };
        let caller = Caller { user };
        // A user without any management tag cannot log in at all (RabbitMQ says so alike).
        if !caller.is(Level::Management) {
            return Err(LOGIN_FAILED);
        }
        Ok(caller)
    }
}

/// `Authorization: Basic base64(name:password)`.
fn basic_credentials(parts: &Parts) -> Option<(String, String)> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_string(), password.to_string()))
}
