//! The web UI's files on the management port: `GET /` is the page, and every file it refers
//! to (its stylesheet, icon and script, and each script module's imports, followed through) is
//! served without a login, with its content type and `Cache-Control: no-cache`, and refers to
//! nothing outside the broker (the page works offline). The page itself, in a browser: the
//! management-ui interop suite.

use std::collections::{BTreeSet, VecDeque};

use crate::common::*;

/// One answer, as much of it as these tests look at.
struct Served {
    status: u16,
    content_type: String,
    cache_control: String,
    body: String,
}

fn fetch(base: &str, path: &str) -> Served {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .build()
        .into();
    let url = format!("{base}{path}");
    let mut response = agent
        .get(&url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (content_type, cache_control) = (header("content-type"), header("cache-control"));
    Served {
        status: response.status().as_u16(),
        content_type,
        cache_control,
        body: response.body_mut().read_to_string().unwrap_or_default(),
    }
}

/// Every quoted value that follows one of `openers` in `text` (`src="x"`, `from './x.js'`).
fn quoted_after<'a>(text: &'a str, openers: &[&str]) -> Vec<&'a str> {
    let mut found = Vec::new();
    for opener in openers {
        let quote = &opener[opener.len() - 1..];
        for (at, _) in text.match_indices(opener) {
            let rest = &text[at + opener.len()..];
            if let Some(end) = rest.find(quote) {
                found.push(&rest[..end]);
            }
        }
    }
    found
}

/// The files a page or script refers to: `src` and `href` in HTML (not `#/…` page links);
/// in a module, its import statements (`import … from '…'`, also spread over lines, and
/// `import '…'`), which start a line.
fn references(path: &str, body: &str) -> Vec<String> {
    let raw = if path.ends_with(".js") {
        body.lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with("import ") || l.starts_with("} from "))
            .flat_map(|l| quoted_after(l, &["from '", "import '", "from \"", "import \""]))
            .collect()
    } else {
        quoted_after(body, &["src=\"", "href=\""])
    };
    raw.into_iter()
        .filter(|r| !r.starts_with('#'))
        .map(|r| resolve(path, r))
        .collect()
}

/// `reference` relative to the file at `path`, as a browser resolves it.
fn resolve(path: &str, reference: &str) -> String {
    assert!(
        !reference.contains("//") && !reference.contains(':'),
        "{path} refers to {reference}, outside the broker: the page must work offline"
    );
    if reference.starts_with('/') {
        return reference.to_string();
    }
    let mut segments: Vec<&str> = path.split('/').collect();
    segments.pop();
    for part in reference.split('/') {
        match part {
            "." => {}
            ".." => {
                segments.pop();
            }
            part => segments.push(part),
        }
    }
    segments.join("/")
}

fn expected_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript",
        Some("css") => "text/css",
        Some("svg") => "image/svg+xml",
        _ => "text/html",
    }
}

#[test]
fn the_page_and_every_file_it_loads_are_served_with_their_types_and_no_login() {
    let broker = TestBroker::spawn(&[]);
    let base = broker.management_url();
    let mut seen = BTreeSet::new();
    let mut to_visit = VecDeque::from(["/".to_string()]);
    while let Some(path) = to_visit.pop_front() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let served = fetch(&base, &path);
        assert_eq!(served.status, 200, "GET {path}");
        assert!(
            served.content_type.starts_with(expected_type(&path)),
            "GET {path}: content-type {}",
            served.content_type
        );
        assert_eq!(served.cache_control, "no-cache", "GET {path}");
        to_visit.extend(references(&path, &served.body));
    }
    for file in [
        "/css/style.css",
        "/js/app.js",
        "/js/api.js",
        "/js/overview.js",
        "/js/queues.js",
        "/js/exchanges.js",
        "/js/connections.js",
        "/js/admin.js",
    ] {
        assert!(seen.contains(file), "the page never loads {file}: {seen:?}");
    }
}

#[test]
fn the_api_still_wants_a_login_and_unknown_paths_are_still_rabbitmqs_404() {
    let broker = TestBroker::spawn(&[]);
    let base = broker.management_url();
    assert_eq!(fetch(&base, "/api/overview").status, 401);
    let missing = fetch(&base, "/no-such-file.js");
    assert_eq!(missing.status, 404);
    assert!(
        missing.content_type.starts_with("application/json"),
        "{}",
        missing.content_type
    );
}
