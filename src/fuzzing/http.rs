//! The management API under arbitrary requests: bytes choose a sequence of requests (method,
//! one of the API's paths with fuzzed segments, a fuzzed query string, credentials that are
//! right, wrong or garbage, a fuzzed body), each sent through the whole router (auth, listing
//! middleware, handlers, the broker behind them) of an in-memory broker.
//!
//! Rules checked: no request panics; none answers 500 (an in-memory broker has no store to
//! fail); every answer with a body is JSON (or the Prometheus text on `/metrics`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use tower::ServiceExt;

use crate::Config;
use crate::auth::Auth;
use crate::broker::Broker;
use crate::ctl::encode_path_segment as encode;
use crate::management::{Api, app, prometheus};

/// Paths with `{}` where fuzzed segments go (percent-encoded as a client would).
const PATHS: [&str; 38] = [
    "/api/overview",
    "/api/whoami",
    "/api/nodes",
    "/api/vhosts",
    "/api/vhosts/{}",
    "/api/users/{}",
    "/api/permissions/{}/{}",
    "/api/topic-permissions/{}/{}",
    "/api/queues",
    "/api/queues/{}",
    "/api/queues/{}/{}",
    "/api/queues/{}/{}/contents",
    "/api/queues/{}/{}/get",
    "/api/queues/{}/{}/bindings",
    "/api/exchanges/{}/{}",
    "/api/exchanges/{}/{}/publish",
    "/api/exchanges/{}/{}/bindings/source",
    "/api/bindings/{}",
    "/api/bindings/{}/e/{}/q/{}",
    "/api/bindings/{}/e/{}/e/{}",
    "/api/bindings/{}/e/{}/q/{}/{}",
    "/api/connections",
    "/api/connections/{}",
    "/api/channels/{}",
    "/api/consumers/{}",
    "/api/definitions",
    "/api/definitions/{}",
    "/api/vhost-limits/{}/{}",
    "/api/user-limits/{}/{}",
    "/api/aliveness-test/{}",
    "/api/health/checks/port-listener/{}",
    "/api/health/checks/protocol-listener/{}",
    "/api/policies/{}",
    "/api/policies/{}/{}",
    "/api/operator-policies/{}/{}",
    "/api/queues/{}/{}?columns=policy,effective_policy_definition",
    "/metrics",
    "/metrics/per-object",
];

/// Bytes to read choices from; running out reads zeros.
struct Choices<'a>(&'a [u8]);

impl Choices<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }

    /// Up to `max` bytes as they come.
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (self.byte() as usize).min(max).min(self.0.len());
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        taken.to_vec()
    }

    /// A short name: mostly ones that exist (so handlers get past their lookups).
    fn name(&mut self) -> String {
        match self.byte() % 6 {
            0 => "/".into(),
            1 => "guest".into(),
            2 => "amq.direct".into(),
            3 => "q".into(),
            _ => String::from_utf8_lossy(&self.bytes(24)).into_owned(),
        }
    }
}

/// Policy keys, some valid values of theirs among the fuzzed ones.
const POLICY_KEYS: [&str; 10] = [
    "max-length",
    "max-length-bytes",
    "message-ttl",
    "expires",
    "overflow",
    "dead-letter-exchange",
    "dead-letter-routing-key",
    "alternate-exchange",
    "ha-mode",
    "ha-params",
];

impl Choices<'_> {
    /// A JSON value of any type, nested at most `depth` levels.
    fn json_value(&mut self, depth: u8) -> serde_json::Value {
        use serde_json::Value;
        match self.byte() % 8 {
            0 => Value::from(i64::from(self.byte() as i8) * 7),
            1 => Value::from(u64::from(self.byte()) << 40),
            2 => Value::from(f64::from(self.byte()) / 3.0),
            3 => Value::from(self.byte().is_multiple_of(2)),
            4 if depth > 0 => (0..self.byte() % 3)
                .map(|_| self.json_value(depth - 1))
                .collect(),
            5 => Value::from(
                ["drop-head", "reject-publish", "all", "exactly", "q"][self.byte() as usize % 5],
            ),
            _ => Value::from(self.name()),
        }
    }

    /// A policy-shaped body (pattern, definition of known and unknown keys, apply-to,
    /// priority), each part sometimes missing or of the wrong type.
    fn policy_body(&mut self) -> Vec<u8> {
        let mut body = serde_json::Map::new();
        if !self.byte().is_multiple_of(4) {
            let pattern = ["^q", ".*", "(", "q$", ""][self.byte() as usize % 5];
            body.insert("pattern".into(), pattern.into());
        }
        let mut definition = serde_json::Map::new();
        for _ in 0..self.byte() % 4 {
            let key = match POLICY_KEYS.get(self.byte() as usize % 12) {
                Some(key) => (*key).to_string(),
                None => self.name(),
            };
            definition.insert(key, self.json_value(2));
        }
        body.insert("definition".into(), definition.into());
        if self.byte().is_multiple_of(2) {
            body.insert("apply-to".into(), self.json_value(1));
        }
        if self.byte().is_multiple_of(2) {
            body.insert("priority".into(), self.json_value(1));
        }
        serde_json::Value::Object(body).to_string().into_bytes()
    }
}

fn api() -> Arc<Api> {
    let broker = Arc::new(Broker::new(
        Auth::with_default_user("guest", "guest", "/"),
        1 << 20,
        1000,
    ));
    let (_alarm_tx, alarm) = tokio::sync::watch::channel(None);
    Arc::new(Api {
        broker,
        config: Arc::new(Config::default()),
        alarm,
        amqp: vec![SocketAddr::from(([127, 0, 0, 1], 5672))],
        amqps: Vec::new(),
        http: SocketAddr::from(([127, 0, 0, 1], 15672)),
        started: std::time::Instant::now(),
        rates: Default::default(),
        cluster: None,
    })
}

/// One run: up to 16 requests chosen by `data` against one fresh broker.
pub fn management_requests(data: &[u8]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(async {
        let api = api();
        let mut choices = Choices(data);
        for _ in 0..16 {
            if choices.0.is_empty() {
                break;
            }
            send(&api, &mut choices).await;
        }
    });
}

async fn send(api: &Arc<Api>, choices: &mut Choices<'_>) {
    let method = [Method::GET, Method::PUT, Method::POST, Method::DELETE]
        [choices.byte() as usize % 4]
        .clone();
    let template = PATHS[choices.byte() as usize % PATHS.len()];
    let mut path = String::new();
    for (i, part) in template.split("{}").enumerate() {
        if i > 0 {
            path.push_str(&encode(&choices.name()));
        }
        path.push_str(part);
    }
    if !path.contains('?') && choices.byte().is_multiple_of(3) {
        let query = String::from_utf8_lossy(&choices.bytes(40)).into_owned();
        path.push('?');
        path.push_str(&encode(&query).replace("%3D", "=").replace("%26", "&"));
    }
    let mut request = Request::builder().method(method).uri(&path);
    request = match choices.byte() % 4 {
        0 => request,
        1 => request.header("authorization", "Basic Z3Vlc3Q6d3Jvbmc="),
        2 => {
            let junk = choices.bytes(40);
            match axum::http::HeaderValue::from_bytes(&junk) {
                Ok(value) => request.header("authorization", value),
                Err(_) => request,
            }
        }
        _ => request.header("authorization", "Basic Z3Vlc3Q6Z3Vlc3Q="),
    };
    let body = if template.contains("policies/{}/{}") && !choices.byte().is_multiple_of(4) {
        choices.policy_body()
    } else {
        choices.bytes(200)
    };
    let Ok(mut request) = request.body(Body::from(body)) else {
        return;
    };
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    let router = if path.starts_with("/metrics") {
        prometheus::app(api.clone())
    } else {
        app(api.clone())
    };
    let Ok(response) = router.oneshot(request).await;
    let status = response.status();
    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "500 for {path}");
    let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .expect("the whole answer");
    if !bytes.is_empty() && !path.starts_with("/metrics") {
        assert!(
            serde_json::from_slice::<serde_json::Value>(&bytes).is_ok(),
            "{status} for {path} is not JSON: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
}
