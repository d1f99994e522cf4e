//! Who is calling. Bearer keys: an agent's key is stored as its SHA-256 only; the hash decides
//! the agent ([`AuthenticatedAgent`], the `/v1` extractor). The admin token guards `/admin`
//! ([`require_admin`], a route layer that answers before any body is read).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use rand::RngCore;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::errors::api_error;

/// The SHA-256 of `key`, as 64 lowercase hex characters.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A fresh API key: `ao-` and 32 random bytes in hex, with its public id (the first 8 hex
/// characters of its hash).
pub fn new_api_key() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let key = format!("ao-{}", hex::encode(bytes));
    let id = hash_key(&key)[..8].to_owned();
    (key, id)
}

/// The live keys, by hash: which agent each authenticates.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    by_hash: Arc<RwLock<HashMap<String, String>>>,
}

impl KeyRing {
    /// An empty ring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets the key with SHA-256 `sha256` in as `agent`.
    pub fn insert(&self, sha256: &str, agent: &str) {
        if let Ok(mut keys) = self.by_hash.write() {
            keys.insert(sha256.to_ascii_lowercase(), agent.to_owned());
        }
    }

    /// Stops letting the key with SHA-256 `sha256` in.
    pub fn remove(&self, sha256: &str) {
        if let Ok(mut keys) = self.by_hash.write() {
            keys.remove(&sha256.to_ascii_lowercase());
        }
    }

    /// Replaces every key at once.
    pub fn replace_all(&self, keys: impl IntoIterator<Item = (String, String)>) {
        if let Ok(mut by_hash) = self.by_hash.write() {
            *by_hash = keys
                .into_iter()
                .map(|(h, a)| (h.to_ascii_lowercase(), a))
                .collect();
        }
    }

    /// The agent a bearer key authenticates, if any. A poisoned ring lets nobody in.
    pub fn agent_for(&self, key: &str) -> Option<String> {
        let hash = hash_key(key);
        self.by_hash.read().ok()?.get(&hash).cloned()
    }

    /// The bearer token of a request, if it has one.
    pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
        headers
            .get("authorization")?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|k| !k.is_empty())
    }
}

impl KeyRing {
    /// The keys of `config` (each agent's `api_key_sha256`) and the live keys in `store`.
    pub fn load(
        config: &ao_orchestrator::Config,
        store: &ao_store::Store,
    ) -> Result<Self, ao_store::StoreError> {
        let ring = Self::new();
        ring.reload(config, store)?;
        Ok(ring)
    }

    /// Reads the keys again (after a revocation made elsewhere, say by `ao keys revoke`).
    pub fn reload(
        &self,
        config: &ao_orchestrator::Config,
        store: &ao_store::Store,
    ) -> Result<(), ao_store::StoreError> {
        let mut keys: Vec<(String, String)> = config
            .agents
            .iter()
            .filter_map(|(name, agent)| {
                agent
                    .api_key_sha256
                    .as_ref()
                    .map(|h| (h.get_ref().clone(), name.clone()))
            })
            .collect();
        keys.extend(
            store
                .api_keys()?
                .into_iter()
                .filter(|k| k.revoked_at.is_none())
                .map(|k| (k.sha256, k.agent)),
        );
        self.replace_all(keys);
        Ok(())
    }
}

/// The agent a `/v1` request comes from, decided by the hash of its bearer key. As an extractor
/// it runs before the body is read, and answers 401 for a missing, unknown or revoked key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuthenticatedAgent(pub(crate) String);

impl FromRequestParts<Arc<AppState>> for AuthenticatedAgent {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let Some(key) = KeyRing::bearer(&parts.headers) else {
            return Err(unauthorized(
                "invalid_api_key",
                "no API key: send `Authorization: Bearer <key>`",
            ));
        };
        state.keys.agent_for(key).map(Self).ok_or_else(|| {
            unauthorized(
                "invalid_api_key",
                "this API key is not valid or was revoked",
            )
        })
    }
}

/// The `/admin` layer: lets a request with the admin token through to its handler, and answers
/// anything else itself, before the body is read. Without a configured admin token, `/admin`
/// does not exist (404).
pub(crate) async fn require_admin(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = &state.options.admin_token_sha256 else {
        return api_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "not_found",
            "the admin API is off: set server.admin_token_sha256",
            Value::Null,
        );
    };
    match KeyRing::bearer(request.headers()) {
        Some(token) if hash_key(token).eq_ignore_ascii_case(expected) => next.run(request).await,
        _ => unauthorized(
            "invalid_admin_token",
            "the admin API needs `Authorization: Bearer <admin token>`",
        ),
    }
}

/// The `/metrics` layer: without a configured metrics token, lets every request through (the
/// metrics are counters and gauges, no secrets, and the default listen address is loopback);
/// with one, only a request that carries it, and answers anything else with 401 itself.
pub(crate) async fn require_metrics_token(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = &state.options.metrics_token_sha256 else {
        return next.run(request).await;
    };
    match KeyRing::bearer(request.headers()) {
        Some(token) if hash_key(token).eq_ignore_ascii_case(expected) => next.run(request).await,
        _ => unauthorized(
            "invalid_metrics_token",
            "/metrics needs `Authorization: Bearer <metrics token>`",
        ),
    }
}

/// A 401 with `WWW-Authenticate: Bearer`.
fn unauthorized(code: &str, message: &str) -> Response {
    let mut response = api_error(
        StatusCode::UNAUTHORIZED,
        "invalid_request_error",
        code,
        message,
        Value::Null,
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}
