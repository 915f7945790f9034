//! The management API as `warren ctl` calls it: basic auth, JSON both ways, the API's
//! `{"error","reason"}` turned into the message printed.

use base64::Engine;
use serde_json::Value;

pub struct Api {
    base: String,
    auth: String,
    agent: ureq::Agent,
}

/// Percent-encodes a path segment (vhost `/` is `%2F`).
pub fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

impl Api {
    pub fn new(url: &str, user: &str, password: &str) -> Api {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Api {
            base: url.trim_end_matches('/').to_string(),
            auth: format!("Basic {token}"),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(std::time::Duration::from_secs(60)))
                .build()
                .into(),
        }
    }

    fn answer(
        &self,
        what: &str,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<(u16, Value), String> {
        let mut response =
            result.map_err(|e| format!("cannot reach the broker at {}: {e}", self.base))?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status >= 400 && status != 404 {
            let reason = body["reason"].as_str().unwrap_or(&text).to_string();
            return Err(format!("{what}: {reason} (HTTP {status})"));
        }
        Ok((status, body))
    }

    fn expect_found(what: &str, (status, body): (u16, Value)) -> Result<Value, String> {
        if status == 404 {
            return Err(format!("{what}: not found"));
        }
        Ok(body)
    }

    pub fn get(&self, path: &str) -> Result<Value, String> {
        let sent = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .call();
        Self::expect_found(path, self.answer(path, sent)?)
    }

    /// `None` when the object does not exist (404).
    pub fn get_optional(&self, path: &str) -> Result<Option<Value>, String> {
        let sent = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .call();
        let (status, body) = self.answer(path, sent)?;
        Ok((status != 404).then_some(body))
    }

    pub fn put(&self, path: &str, body: &Value) -> Result<(), String> {
        let sent = self
            .agent
            .put(format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .content_type("application/json")
            .send(body.to_string());
        Self::expect_found(path, self.answer(path, sent)?).map(drop)
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<(), String> {
        let sent = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .content_type("application/json")
            .send(body.to_string());
        Self::expect_found(path, self.answer(path, sent)?).map(drop)
    }

    pub fn delete(&self, path: &str) -> Result<(), String> {
        let sent = self
            .agent
            .delete(format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .call();
        Self::expect_found(path, self.answer(path, sent)?).map(drop)
    }

    /// DELETE with RabbitMQ's `X-Reason` header (closing a connection).
    pub fn delete_with_reason(&self, path: &str, reason: &str) -> Result<(), String> {
        let sent = self
            .agent
            .delete(format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .header("x-reason", reason)
            .call();
        Self::expect_found(path, self.answer(path, sent)?).map(drop)
    }
}
