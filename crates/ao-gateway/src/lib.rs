//! The gateway: an OpenAI-compatible HTTP endpoint that gives any agent, in any language,
//! budgets, approvals and an audit trail by pointing its OpenAI base URL here.
//!
//! - `POST /v1/chat/completions` (plain and streamed) and `GET /v1/models`. Each agent
//!   authenticates with its own bearer key, stored only as a SHA-256 hash; the key decides which
//!   agent is calling. Every request goes through the [`Orchestrator`]: route, reserve, approval,
//!   backend with fallback, settle, audit. Over budget: `429` naming the limit and when it resets.
//!   Needs approval: `403` with the approval id, to retry with the `X-AO-Approval` header.
//! - `/admin/...` with the admin token: budgets and spend per agent, pending approvals,
//!   approve/reject (or a signed Nostr decision event), API keys, the audit log and its
//!   verification; with `[signing]`, the agent's profile and audit checkpoints signed by its
//!   signer nodes (the gateway holds no share).
//! - `GET /metrics` (Prometheus text; with `metrics_token_sha256` set, only with that bearer
//!   token) and `GET /healthz`.
//! - `/ui`: the operator console in a browser, signed in with the admin token (see `ui.rs`).
//!
//! Costs and audit entries are counted in memory before the response leaves and written to the
//! database in the background; [`Gateway::shutdown`] waits for them, so nothing reserved or spent
//! is lost on SIGTERM.
//!
//! What it is **not** for: rules. Every decision is the orchestrator's; this crate is HTTP.
//!
//! [`Orchestrator`]: ao_orchestrator::Orchestrator

#![forbid(unsafe_code)]

mod admin;
mod auth;
mod chat;
mod errors;
mod metrics;
mod serve;
mod ui;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ao_orchestrator::Orchestrator;
use ao_store::Store;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use auth::{KeyRing, hash_key, new_api_key};
pub use metrics::Metrics;
pub use serve::ConnectionLimits;

/// Gateway settings.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// The SHA-256 (hex) of the admin token; without one, `/admin` answers 404.
    pub admin_token_sha256: Option<String>,
    /// The SHA-256 (hex) of the token `/metrics` wants; without one, `/metrics` is open.
    pub metrics_token_sha256: Option<String>,
    /// The largest request body accepted.
    pub max_body_bytes: usize,
    /// How long a client may take to send its request body.
    pub client_timeout: Duration,
    /// The longest a streamed reply runs; past it the stream ends with an error (and is settled
    /// as cut off), so no stream outlives a graceful shutdown for long.
    pub max_stream: Duration,
    /// The connection limits.
    pub connections: ConnectionLimits,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            admin_token_sha256: None,
            metrics_token_sha256: None,
            max_body_bytes: 1024 * 1024,
            client_timeout: Duration::from_secs(30),
            max_stream: Duration::from_secs(600),
            connections: ConnectionLimits::default(),
        }
    }
}

/// What every handler shares.
pub(crate) struct AppState {
    pub(crate) orchestrator: Orchestrator,
    pub(crate) store: Store,
    pub(crate) keys: KeyRing,
    pub(crate) metrics: Metrics,
    pub(crate) options: GatewayOptions,
    pub(crate) models: Vec<String>,
    pub(crate) started: Instant,
    pub(crate) console: ui::Console,
}

/// The gateway: an axum application over an orchestrator.
#[derive(Clone)]
pub struct Gateway {
    state: Arc<AppState>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("orchestrator", &self.state.orchestrator)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A gateway serving `orchestrator`, with API keys from `keys` and the database `store`.
    pub fn new(
        orchestrator: Orchestrator,
        store: impl Into<Store>,
        keys: KeyRing,
        options: GatewayOptions,
    ) -> Self {
        let mut models: Vec<String> = orchestrator
            .router()
            .list_enabled()
            .iter()
            .map(|b| b.model.clone())
            .collect();
        models.sort();
        models.dedup();
        Self {
            state: Arc::new(AppState {
                orchestrator,
                store: store.into(),
                keys,
                metrics: Metrics::default(),
                options,
                models,
                started: Instant::now(),
                console: ui::Console::default(),
            }),
        }
    }

    /// The orchestrator behind the gateway.
    pub fn orchestrator(&self) -> &Orchestrator {
        &self.state.orchestrator
    }

    /// The API keys.
    pub fn keys(&self) -> &KeyRing {
        &self.state.keys
    }

    /// The axum application.
    pub fn router(&self) -> Router {
        // The token check is a route layer: it answers before the handler runs.
        let metrics = Router::new().route("/metrics", get(metrics)).route_layer(
            axum::middleware::from_fn_with_state(
                Arc::clone(&self.state),
                auth::require_metrics_token,
            ),
        );
        Router::new()
            .route("/v1/chat/completions", post(chat::completions))
            .route("/v1/models", get(chat::models))
            .route("/healthz", get(healthz))
            .merge(metrics)
            .nest("/admin", admin::router(&self.state))
            .merge(ui::router(&self.state))
            // The handler reads the body itself, with its own limit and timeout.
            .layer(DefaultBodyLimit::disable())
            .with_state(Arc::clone(&self.state))
    }

    /// Serves on `listener` until `shutdown` resolves, under the connection limits of its
    /// options, then lets requests in flight finish (for at most the drain timeout) and waits
    /// until every cost and audit entry is written.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // The console's event streams never end by themselves: end them when shutdown begins.
        let state = Arc::clone(&self.state);
        let shutdown = async move {
            shutdown.await;
            state.console.close_streams();
        };
        serve::serve(
            listener,
            self.router(),
            self.state.options.connections,
            shutdown,
        )
        .await;
        self.shutdown().await;
        Ok(())
    }

    /// Waits for background writes (costs, audit entries) to finish.
    pub async fn shutdown(&self) {
        self.state.orchestrator.drain().await;
    }
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    if let Some(pg) = state.store.postgres().cloned() {
        // The budgets are in the database: without it nothing is admitted.
        return match tokio::task::spawn_blocking(move || pg.check()).await {
            Ok(Ok(())) => (StatusCode::OK, "ok\n").into_response(),
            Ok(Err(e)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("unhealthy: {}\n", ao_types::Report::new(&e)),
            )
                .into_response(),
            Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "unhealthy\n").into_response(),
        };
    }
    match state.orchestrator.tracker().pending_records() {
        Ok(0) => (StatusCode::OK, "ok\n").into_response(),
        Ok(n) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: {n} cost record(s) not yet written to the ledger\n"),
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: {}\n", ao_types::Report::new(&e)),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let spends = admin::spends(&state.orchestrator).await.ok();
    let body = state
        .metrics
        .render(&state.orchestrator, spends.as_deref(), state.started);
    ([("content-type", "text/plain; version=0.0.4")], body).into_response()
}
