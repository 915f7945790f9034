//! The web UI: a static single-page app (plain HTML, CSS and JavaScript modules in `ui/`),
//! compiled into the binary and served on the management port at `/`, as RabbitMQ's
//! management plugin serves its own.
//!
//! The files need no login (RabbitMQ serves its UI files without one too): everything the
//! page shows comes from `/api/…`, which the page calls with HTTP basic auth. Each file goes
//! out with its content type, `Cache-Control: no-cache` (a browser checks again after an
//! upgrade rather than running a stale script against a newer API) and a content security
//! policy that lets the page load nothing but these files and call nothing but this origin.

use std::sync::Arc;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::Api;

/// One file of the page: where it is served, its content type, and its text.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    text: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// One file of `ui/`, served at `url_dir` + its name.
macro_rules! asset {
    ($url_dir:literal, $file:literal, $content_type:expr) => {
        Asset {
            path: concat!($url_dir, $file),
            content_type: $content_type,
            text: include_str!(concat!("ui/", $file)),
        }
    };
}

/// The page itself, also served at `/`.
const PAGE: Asset = asset!("/", "index.html", HTML);

/// Every file the page loads; `tests/broker/management/ui.rs` checks that each one the page
/// refers to is served, with its type.
const ASSETS: &[Asset] = &[
    PAGE,
    asset!("/css/", "style.css", CSS),
    asset!("/", "favicon.svg", SVG),
    asset!("/js/", "app.js", JS),
    asset!("/js/", "api.js", JS),
    asset!("/js/", "dom.js", JS),
    asset!("/js/", "forms.js", JS),
    asset!("/js/", "overview.js", JS),
    asset!("/js/", "queues.js", JS),
    asset!("/js/", "queue.js", JS),
    asset!("/js/", "messages.js", JS),
    asset!("/js/", "exchanges.js", JS),
    asset!("/js/", "connections.js", JS),
    asset!("/js/", "admin.js", JS),
    asset!("/js/", "policies.js", JS),
];

/// Scripts, styles, images and API calls from this origin only; no inline script, no frames.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn routes() -> axum::Router<Arc<Api>> {
    ASSETS
        .iter()
        .fold(axum::Router::new(), |router, asset| {
            router.route(asset.path, get(move || async move { serve(asset) }))
        })
        .route("/", get(|| async { serve(&PAGE) }))
}

fn serve(asset: &'static Asset) -> Response {
    let mut response = asset.text.into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, asset.content_type),
        (header::CACHE_CONTROL, "no-cache"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
