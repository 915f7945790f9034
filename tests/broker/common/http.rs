//! A small client for the management HTTP API (ureq): basic auth, JSON in and out, and the
//! status code returned rather than turned into an error.

use base64::Engine;
use serde_json::Value;

/// One answer: status, the `WWW-Authenticate` header, and the body (JSON; text that is not
/// JSON comes back as `{"not json": text}`, as the recorder writes it).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub www_authenticate: Option<String>,
    pub body: Value,
}

pub struct Http {
    base: String,
    agent: ureq::Agent,
}

impl Http {
    pub fn new(base: &str) -> Http {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(10)))
            .build()
            .into();
        Http {
            base: base.trim_end_matches('/').to_string(),
            agent,
        }
    }

    /// `user` empty: no credentials at all.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        user: &str,
        password: &str,
        body: Option<&str>,
    ) -> Answer {
        let url = format!("{}{path}", self.base);
        let auth = (!user.is_empty()).then(|| {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Basic {token}")
        });
        let result = match (method, body) {
            ("GET", _) => with_auth(self.agent.get(&url), auth).call(),
            ("DELETE", _) => with_auth(self.agent.delete(&url), auth).call(),
            ("PUT", body) => with_auth(self.agent.put(&url), auth)
                .content_type("application/json")
                .send(body.unwrap_or("")),
            ("POST", body) => with_auth(self.agent.post(&url), auth)
                .content_type("application/json")
                .send(body.unwrap_or("")),
            _ => panic!("method {method} not supported by the test client"),
        };
        let mut response = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let www_authenticate = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| serde_json::json!({ "not json": text }))
        };
        Answer {
            status,
            www_authenticate,
            body,
        }
    }

    pub fn get(&self, path: &str) -> Answer {
        self.call("GET", path, "guest", "guest", None)
    }

    pub fn put(&self, path: &str, body: &Value) -> Answer {
        self.call("PUT", path, "guest", "guest", Some(&body.to_string()))
    }

    pub fn delete(&self, path: &str) -> Answer {
        self.call("DELETE", path, "guest", "guest", None)
    }
}

/// Percent-encodes a name for a path (a connection's name has spaces and `>`).
pub fn path_segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn with_auth<B>(request: ureq::RequestBuilder<B>, auth: Option<String>) -> ureq::RequestBuilder<B> {
    match auth {
        Some(value) => request.header("authorization", value),
        None => request,
    }
}
