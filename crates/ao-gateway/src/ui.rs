//! The operator console at `/ui`: agents' budgets and spend, pending approvals (live, approved
//! with a NIP-07 signature where the agent's policy needs one), the audit log and API keys, in
//! a browser.
//!
//! - Assets: plain HTML, CSS and ES modules under `crates/ao-gateway/ui/`, embedded in the binary
//!   with `include_str!` ([`assets`]): no CDN, no build step, works offline.
//! - Sign-in: `POST /ui/login` with the admin token opens a session held in memory; its id lives
//!   in an `HttpOnly; SameSite=Strict` cookie ([`session`]). Every change (any method but `GET`)
//!   also needs the session's CSRF token in `X-CSRF-Token`.
//! - Data: `/ui/api/*` behind the session, never the bearer token. The admin API's handlers are
//!   mounted there as they are (`/ui/api/approvals/{id}/approve`, `/ui/api/keys`, ...), plus
//!   what only the console needs: budgets with session spend, spend over time ([`data`]) and the
//!   pending approvals as server-sent events ([`live`]).
//! - Safety: every response carries a strict Content-Security-Policy (no inline script or style,
//!   Trusted Types required, so the page cannot assign a string as HTML) and the front end sets
//!   every agent-written string with `textContent`.
//!
//! What it is **not** for: anything the admin API cannot do. The console is a view on it; it
//! never holds an operator's signing key (the browser's NIP-07 signer does).

mod assets;
mod data;
mod live;
mod session;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::watch;

use crate::AppState;
use crate::admin::{self, MAX_ADMIN_BODY, read_body_in_time};
use crate::errors::api_error;

pub(crate) use session::Sessions;

/// The console's own state: its sessions, and the signal that ends its event streams when the
/// gateway shuts down (a stream never ends by itself, and a graceful shutdown waits for it).
#[derive(Debug)]
pub(crate) struct Console {
    pub(crate) sessions: Sessions,
    closing: watch::Sender<bool>,
}

impl Default for Console {
    fn default() -> Self {
        Self {
            sessions: Sessions::default(),
            closing: watch::Sender::new(false),
        }
    }
}

impl Console {
    /// Ends every event stream, now and for streams opened from now on.
    pub(crate) fn close_streams(&self) {
        self.closing.send_replace(true);
    }

    /// A receiver that sees `true` once the gateway is shutting down.
    fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }
}

/// The Content-Security-Policy of every `/ui` response: only this origin's scripts, styles and
/// images, no inline script or style, no framing, no `<base>`, and Trusted Types required with no
/// policy allowed, so no string can ever be assigned as HTML.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'";

/// The `/ui` routes, with their full paths (so that `/ui/` is the console too). Without a configured admin token the console does not exist (404), like
/// `/admin`.
pub(crate) fn router(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    let api = admin::routes()
        .route("/session", get(session::current))
        .route("/logout", post(session::logout))
        .route("/budgets", get(data::budgets))
        .route("/spend", get(data::spend))
        .route("/approvals/stream", get(live::pending_stream))
        .layer(DefaultBodyLimit::max(MAX_ADMIN_BODY))
        .layer(middleware::map_response(no_store))
        // Route layers run last-added first: the session (and, for a change, its CSRF token) is
        // checked, then the body is read.
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(state),
            read_body_in_time,
        ))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(state),
            session::require_session,
        ));
    let login = post(session::login).route_layer(middleware::from_fn_with_state(
        Arc::clone(state),
        read_body_in_time,
    ));
    Router::new()
        .route("/ui", get(assets::index))
        .route("/ui/", get(assets::index))
        .route("/ui/login", login)
        .route("/ui/assets/{file}", get(assets::asset))
        .nest("/ui/api", api)
        .layer(middleware::map_response(security_headers))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(state),
            console_enabled,
        ))
}

/// 404 for the whole console when the gateway has no admin token.
async fn console_enabled(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if state.options.admin_token_sha256.is_none() {
        return api_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "not_found",
            "the console is off: set server.admin_token_sha256",
            Value::Null,
        );
    }
    next.run(request).await
}

/// The headers every console response carries.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// Data is never cached: it is private, and stale budgets mislead.
async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
