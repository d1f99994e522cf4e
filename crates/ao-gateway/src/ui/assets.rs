//! The console's files, embedded in the binary from `crates/ao-gateway/ui/`: served from memory,
//! so the console works offline and is exactly the version of the gateway serving it.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_str!(concat!("../../ui/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file under `/ui/assets/`.
const ASSETS: &[Asset] = &[
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("chart.js", JS),
    asset!("agents.js", JS),
    asset!("approvals.js", JS),
    asset!("nip07.js", JS),
    asset!("audit.js", JS),
    asset!("keys.js", JS),
];

/// The page itself.
const INDEX: &str = include_str!("../../ui/index.html");

fn file(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Revalidated each time: a new gateway may serve new files under the same names.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /ui`: the console's page.
pub(crate) async fn index() -> Response {
    file("text/html; charset=utf-8", INDEX)
}

/// `GET /ui/assets/{file}`.
pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => file(a.content_type, a.body),
        None => (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    }
}

/// The names of the embedded files, for tests.
#[cfg(test)]
pub(crate) fn names() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|a| a.name)
}

/// The body of embedded file `name`, for tests.
#[cfg(test)]
pub(crate) fn body(name: &str) -> Option<&'static str> {
    if name == "index.html" {
        return Some(INDEX);
    }
    ASSETS.iter().find(|a| a.name == name).map(|a| a.body)
}
