//! Console sessions: signing in with the admin token, the session cookie and the CSRF token.
//!
//! - `POST /ui/login` with `{"token": "<admin token>"}` (and `Content-Type: application/json`,
//!   which a cross-site form cannot send) opens a session: 256 random bits in the cookie
//!   `ao_console` (`HttpOnly; SameSite=Strict; Path=/ui`, and `Secure` when a proxy in front
//!   says the request came over https), and a CSRF token of 256 random bits in the answer.
//! - [`require_session`] guards `/ui/api`: no session (or an expired one) is 401; a change (any
//!   method but `GET` and `HEAD`) without the session's CSRF token in `X-CSRF-Token` is 403.
//! - Sessions live in memory only, for [`SESSION_LIFETIME`] from sign-in, at most
//!   [`MAX_SESSIONS`] at once (signing in again past it closes the oldest); a restart signs
//!   everyone out. Their lifetime is read on the monotonic clock: it decides no budget.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::hash_key;
use crate::errors::api_error;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "ao_console";
/// The header that carries the CSRF token on every change.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts from sign-in.
pub(crate) const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3_600);
/// The most sessions held at once.
pub(crate) const MAX_SESSIONS: usize = 64;

/// Why a session could not be opened or checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum SessionError {
    /// A thread panicked while holding the session table; nobody is let in until a restart.
    #[error("the console's session table is unusable after an internal panic: restart the gateway")]
    Poisoned,
}

/// One signed-in browser.
#[derive(Debug)]
struct Session {
    csrf: String,
    expires: Instant,
}

/// The open sessions, by id.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    open: Mutex<HashMap<String, Session>>,
}

/// A session let through by [`require_session`], as a request extension.
#[derive(Debug, Clone)]
pub(crate) struct SessionInfo {
    pub(crate) id: String,
    pub(crate) csrf: String,
    pub(crate) expires: Instant,
}

impl Sessions {
    fn lock(&self) -> Result<MutexGuard<'_, HashMap<String, Session>>, SessionError> {
        self.open.lock().map_err(|_| SessionError::Poisoned)
    }

    /// Opens a session at `now`: its id and its CSRF token.
    pub(crate) fn open(&self, now: Instant) -> Result<(String, String), SessionError> {
        let id = random_hex();
        let csrf = random_hex();
        let mut open = self.lock()?;
        open.retain(|_, s| s.expires > now);
        while open.len() >= MAX_SESSIONS {
            let oldest = open
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(oldest) => open.remove(&oldest),
                None => break,
            };
        }
        open.insert(
            id.clone(),
            Session {
                csrf: csrf.clone(),
                expires: now + SESSION_LIFETIME,
            },
        );
        Ok((id, csrf))
    }

    /// The session `id` if it is open at `now`.
    pub(crate) fn check(
        &self,
        id: &str,
        now: Instant,
    ) -> Result<Option<SessionInfo>, SessionError> {
        let mut open = self.lock()?;
        match open.get(id) {
            Some(s) if s.expires > now => Ok(Some(SessionInfo {
                id: id.to_owned(),
                csrf: s.csrf.clone(),
                expires: s.expires,
            })),
            Some(_) => {
                open.remove(id);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Whether session `id` is still open at `now`; a table that cannot be read says no.
    pub(crate) fn is_open(&self, id: &str, now: Instant) -> bool {
        matches!(self.check(id, now), Ok(Some(_)))
    }

    /// Closes session `id`.
    pub(crate) fn close(&self, id: &str) -> Result<(), SessionError> {
        self.lock()?.remove(id);
        Ok(())
    }
}

/// 32 random bytes from the operating system, in hex.
fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Whether `a` and `b` are equal, in time that does not depend on where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The `Set-Cookie` value for session `id` (an empty id and no lifetime clear the cookie).
pub(crate) fn set_cookie(id: &str, lifetime: Duration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/ui; Max-Age={}{secure}",
        lifetime.as_secs()
    )
}

/// Whether a proxy in front says the browser came over https (the gateway itself speaks only
/// http): then the cookie is `Secure`. A client that sets the header itself only keeps its own
/// cookie from being sent back over http.
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn unusable(error: &SessionError) -> Response {
    api_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "api_error",
        "sessions_unavailable",
        &error.to_string(),
        Value::Null,
    )
}

/// The `/ui/api` layer: lets a request with an open session through (with [`SessionInfo`] as
/// an extension), after checking a change's CSRF token; answers anything else itself, before
/// the body is read.
pub(crate) async fn require_session(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let id = cookie(request.headers(), COOKIE).unwrap_or_default();
    let session = match state.console.sessions.check(id, Instant::now()) {
        Ok(Some(session)) => session,
        Ok(None) => {
            return api_error(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "no_session",
                "no console session, or it expired: sign in with the admin token",
                Value::Null,
            );
        }
        Err(e) => return unusable(&e),
    };
    let safe = matches!(*request.method(), Method::GET | Method::HEAD);
    let token = request
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !safe && !same_secret(token, &session.csrf) {
        return api_error(
            StatusCode::FORBIDDEN,
            "invalid_request_error",
            "csrf_token_mismatch",
            "a change needs the session's CSRF token in `X-CSRF-Token`: reload the console",
            Value::Null,
        );
    }
    request.extensions_mut().insert(session);
    next.run(request).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    token: String,
}

/// `POST /ui/login`: opens a session for the admin token.
pub(crate) async fn login(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return api_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request_error",
            "json_required",
            "sign in with a JSON body {\"token\": ...} and `Content-Type: application/json`",
            Value::Null,
        );
    }
    let expected = state.options.admin_token_sha256.as_deref().unwrap_or("");
    let valid = serde_json::from_slice::<Login>(&body)
        .is_ok_and(|l| !expected.is_empty() && hash_key(&l.token).eq_ignore_ascii_case(expected));
    if !valid {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_admin_token",
            "that is not the admin token",
            Value::Null,
        );
    }
    let (id, csrf) = match state.console.sessions.open(Instant::now()) {
        Ok(opened) => opened,
        Err(e) => return unusable(&e),
    };
    let cookie = set_cookie(&id, SESSION_LIFETIME, over_https(&headers));
    let mut response = Json(json!({
        "csrf_token": csrf,
        "expires_in_secs": SESSION_LIFETIME.as_secs(),
    }))
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `GET /ui/api/session`: the session's CSRF token, for a page loaded again.
pub(crate) async fn current(Extension(session): Extension<SessionInfo>) -> Response {
    let left = session.expires.saturating_duration_since(Instant::now());
    Json(json!({"csrf_token": session.csrf, "expires_in_secs": left.as_secs()})).into_response()
}

/// `POST /ui/api/logout`: closes the session and clears its cookie.
pub(crate) async fn logout(
    State(state): State<Arc<AppState>>,
    Extension(session): Extension<SessionInfo>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = state.console.sessions.close(&session.id) {
        return unusable(&e);
    }
    let mut response = Json(json!({"signed_out": true})).into_response();
    let cookie = set_cookie("", Duration::ZERO, over_https(&headers));
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
