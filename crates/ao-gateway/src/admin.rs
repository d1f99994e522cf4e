//! `/admin`: the operator's API, behind the admin token.

use std::sync::Arc;

use ao_approvals::{ApprovalError, SolverAgentCoordinator, Verdict, parse_decision_event};
use ao_budget::BudgetStatus;
use ao_store::ApiKeyRow;
use ao_types::Report;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

mod audit;
mod signing;

use crate::AppState;
use crate::auth::{hash_key, new_api_key, require_admin};
use crate::errors::api_error;

/// The admin routes, behind [`require_admin`]: a request without the admin token is answered
/// before its body is read, and a body is at most [`MAX_ADMIN_BODY`].
pub(crate) fn router(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    routes()
        .layer(DefaultBodyLimit::max(MAX_ADMIN_BODY))
        // Route layers run last-added first: the token is checked, then the body is read.
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(state),
            read_body_in_time,
        ))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(state),
            require_admin,
        ))
}

/// The admin routes with no authentication of their own: [`router`] puts them behind the admin
/// token, the console (`crate::ui`) behind its session and CSRF token.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/agents", get(agents))
        .route("/approvals", get(approvals))
        .route("/approvals/signed", post(signed))
        .route("/approvals/{id}/approve", post(approve))
        .route("/approvals/{id}/reject", post(reject))
        .route("/audit", get(audit::entries))
        .route("/audit/verify", get(audit::verify))
        .route("/audit/head", get(audit::head))
        .route("/audit/checkpoint", post(audit::checkpoint))
        .route("/audit/agent-checkpoint", post(signing::agent_checkpoint))
        .route("/signing/profile", post(signing::profile))
        .route("/keys", get(keys).post(create_key))
        .route("/keys/{id}", delete(revoke_key))
}

/// Reads an admin request's body whole, within the client timeout and [`MAX_ADMIN_BODY`], before
/// its handler runs: 408 for a body that trickles, 413 for one too large.
pub(crate) async fn read_body_in_time(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match tokio::time::timeout(
        state.options.client_timeout,
        axum::body::to_bytes(body, MAX_ADMIN_BODY),
    )
    .await
    {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            return api_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                "request_too_large",
                &format!("an admin request body is at most {MAX_ADMIN_BODY} bytes"),
                Value::Null,
            );
        }
        Err(_) => {
            return api_error(
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request_error",
                "request_timeout",
                "the request body did not arrive in time",
                Value::Null,
            );
        }
    };
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

/// The largest body an `/admin` route reads: decisions, signed events and key requests are small.
pub(crate) const MAX_ADMIN_BODY: usize = 64 * 1024;

/// 503: the clock cannot be read, so nothing can be dated.
fn clock_unavailable(error: &ao_types::ClockError) -> Response {
    unavailable("clock_unavailable", error)
}

/// 503: the store or the audit log cannot be used right now.
fn unavailable(code: &str, error: &dyn std::error::Error) -> Response {
    api_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "api_error",
        code,
        &Report::new(error).to_string(),
        Value::Null,
    )
}

fn approval_error(error: &ApprovalError) -> Response {
    let status = match error {
        ApprovalError::NotFound { .. } => StatusCode::NOT_FOUND,
        ApprovalError::BadSignature { .. }
        | ApprovalError::WrongKind { .. }
        | ApprovalError::MissingTag { .. }
        | ApprovalError::UnknownDecision { .. }
        | ApprovalError::StaleEvent { .. }
        | ApprovalError::DecisionMismatch { .. } => StatusCode::BAD_REQUEST,
        ApprovalError::AlreadyDecided { .. }
        | ApprovalError::Expired { .. }
        | ApprovalError::DuplicateVote { .. } => StatusCode::CONFLICT,
        ApprovalError::Store(_)
        | ApprovalError::NotStored { .. }
        | ApprovalError::Clock(_)
        | ApprovalError::Poisoned => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::FORBIDDEN,
    };
    api_error(
        status,
        "approval_error",
        "approval_refused",
        &Report::new(error).to_string(),
        Value::Null,
    )
}

fn coordinator_of<'a>(state: &'a AppState, id: &str) -> Option<&'a Arc<SolverAgentCoordinator>> {
    state
        .orchestrator
        .agent_names()
        .filter_map(|name| state.orchestrator.coordinator(name))
        .find(|c| c.record(id).is_some())
}

/// Every agent's spend today, by name, wherever budgets are kept (read from the database when
/// they are shared): one figure that cannot be read fails the whole list.
pub(crate) async fn spends(
    orchestrator: &ao_orchestrator::Orchestrator,
) -> Result<Vec<(String, ao_orchestrator::Spend)>, ao_orchestrator::OrchestratorError> {
    let mut names: Vec<String> = orchestrator.agent_names().map(str::to_owned).collect();
    names.sort_unstable();
    let mut list = Vec::with_capacity(names.len());
    for name in names {
        let spend = orchestrator.spend(&name).await?;
        list.push((name, spend));
    }
    Ok(list)
}

/// Each agent's budgets and spend, in a stable shape (see [`budget_status`]); 503 when a figure
/// cannot be read (the shared database is away, say).
async fn agents(State(state): State<Arc<AppState>>) -> Response {
    let spends = match spends(&state.orchestrator).await {
        Ok(spends) => spends,
        Err(e) => return unavailable("budget_unavailable", &e),
    };
    let tracker = state.orchestrator.tracker();
    let list: Vec<Value> = spends
        .into_iter()
        .map(|(name, spend)| {
            let budget = tracker.budget_for(&name);
            let autonomy = state
                .orchestrator
                .coordinator(&name)
                .map(|c| c.identity().autonomy_level.as_str());
            let backend = state
                .orchestrator
                .router()
                .get_backend(&name)
                .map(|b| b.provider.as_str());
            json!({
                "agent": name,
                "autonomy": autonomy,
                "backend": backend,
                "daily_limit_sats": budget.daily_limit_sats,
                "session_limit_sats": budget.session_limit_sats,
                "warn_threshold_pct": budget.warn_threshold_pct,
                "spent_today_sats": spend.sats,
                "tokens_today": spend.tokens,
                "outstanding_reservations": spend.outstanding,
                "budget_status": budget_status(spend.status),
            })
        })
        .collect();
    Json(json!({ "agents": list })).into_response()
}

/// A budget status as JSON: `{"state": "ok" | "warning" | "session_exceeded" |
/// "daily_exceeded"}`, with `session_pct` and `daily_pct` for a warning.
fn budget_status(status: BudgetStatus) -> Value {
    match status {
        BudgetStatus::Ok => json!({"state": "ok"}),
        BudgetStatus::Warning {
            session_pct,
            daily_pct,
        } => json!({"state": "warning", "session_pct": session_pct, "daily_pct": daily_pct}),
        BudgetStatus::SessionExceeded => json!({"state": "session_exceeded"}),
        BudgetStatus::DailyExceeded => json!({"state": "daily_exceeded"}),
    }
}

/// A page of pending approvals: `?limit=N` (default 100, at most 1,000) and `?after=ID`, the
/// last id of the previous page. Oldest first, across agents; `next` is the cursor of the next
/// page, or null. Listing writes nothing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PendingPage {
    #[serde(default = "audit::hundred")]
    limit: usize,
    after: Option<String>,
}

async fn approvals(
    State(state): State<Arc<AppState>>,
    Query(page): Query<PendingPage>,
) -> Response {
    let mut pending = Vec::new();
    for name in state.orchestrator.agent_names() {
        if let Some(coordinator) = state.orchestrator.coordinator(name) {
            match coordinator.try_list_pending() {
                Ok(list) => pending.extend(list.into_iter().map(|p| (name, p))),
                Err(e) => return approval_error(&e),
            }
        }
    }
    pending
        .sort_by(|a, b| (a.1.created_at, &a.1.request_id).cmp(&(b.1.created_at, &b.1.request_id)));
    let start = page
        .after
        .as_deref()
        .and_then(|after| pending.iter().position(|(_, p)| p.request_id == after))
        .map_or(0, |i| i + 1);
    let limit = page.limit.clamp(1, 1_000);
    let rest = pending.len().saturating_sub(start);
    let list: Vec<Value> = pending
        .iter()
        .skip(start)
        .take(limit)
        .map(|(name, p)| {
            json!({
                "agent": name,
                "request_id": p.request_id,
                "action_type": p.action_type,
                "description": p.description,
                "cost_estimate_sats": p.cost_estimate_sats,
                "created_at": p.created_at,
            })
        })
        .collect();
    let next = (rest > limit)
        .then(|| {
            list.last()
                .and_then(|p| p["request_id"].as_str())
                .map(str::to_owned)
        })
        .flatten();
    Json(json!({ "pending": list, "next": next })).into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    reason: Option<String>,
    decided_by: Option<String>,
}

async fn decide(state: Arc<AppState>, id: String, body: Bytes, verdict: Verdict) -> Response {
    let decision: DecisionBody = if body.is_empty() {
        DecisionBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(d) => d,
            Err(e) => {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "invalid_json",
                    &format!("expected {{\"reason\": ..., \"decided_by\": ...}}: {e}"),
                    Value::Null,
                );
            }
        }
    };
    let Some(coordinator) = coordinator_of(&state, &id) else {
        return approval_error(&ApprovalError::NotFound { id });
    };
    let by = decision.decided_by.as_deref().unwrap_or("admin api");
    match coordinator.decide(&id, verdict, by, decision.reason.as_deref()) {
        Ok(()) => {
            Json(json!({"request_id": id, "status": coordinator.status(&id).map(|s| s.as_str())}))
                .into_response()
        }
        Err(e) => approval_error(&e),
    }
}

async fn approve(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    decide(state, id, body, Verdict::Approve).await
}

async fn reject(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    decide(state, id, body, Verdict::Reject).await
}

/// A signed NIP-SA decision event (kind 39213), which names its request.
async fn signed(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let event: nostr::Event = match std::str::from_utf8(&body)
        .ok()
        .and_then(|text| nostr::JsonUtil::from_json(text).ok())
    {
        Some(event) => event,
        None => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_event",
                "the body is not a Nostr event",
                Value::Null,
            );
        }
    };
    let id = match parse_decision_event(&event) {
        Ok(parsed) => parsed.request_id,
        Err(e) => return approval_error(&e),
    };
    let Some(coordinator) = coordinator_of(&state, &id) else {
        return approval_error(&ApprovalError::NotFound { id });
    };
    match coordinator.decide_signed(&event) {
        Ok(status) => Json(json!({"request_id": id, "status": status.as_str()})).into_response(),
        Err(e) => approval_error(&e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    agent: String,
}

async fn keys(State(state): State<Arc<AppState>>) -> Response {
    match state.store.api_keys() {
        Ok(rows) => {
            let list: Vec<Value> = rows.into_iter().map(|k| json!({"id": k.id, "agent": k.agent, "created_at": k.created_at, "revoked_at": k.revoked_at})).collect();
            Json(json!({ "keys": list })).into_response()
        }
        Err(e) => unavailable("store_unavailable", &e),
    }
}

async fn create_key(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let request: NewKey = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_json",
                &format!("expected {{\"agent\": \"name\"}}: {e}"),
                Value::Null,
            );
        }
    };
    if state.orchestrator.coordinator(&request.agent).is_none() {
        return api_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "unknown_agent",
            &format!("agent `{}` is not configured", request.agent),
            Value::Null,
        );
    }
    let now = match state.orchestrator.clock().now() {
        Ok(now) => now,
        Err(e) => return clock_unavailable(&e),
    };
    let (key, id) = new_api_key();
    let row = ApiKeyRow {
        id: id.clone(),
        agent: request.agent.clone(),
        sha256: hash_key(&key),
        created_at: now,
        revoked_at: None,
    };
    if let Err(e) = state.store.add_api_key(&row) {
        return unavailable("store_unavailable", &e);
    }
    state.keys.insert(&row.sha256, &row.agent);
    (StatusCode::CREATED, Json(json!({"id": id, "agent": request.agent, "key": key, "note": "the key is shown once; only its hash is kept"}))).into_response()
}

async fn revoke_key(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let rows = match state.store.api_keys() {
        Ok(rows) => rows,
        Err(e) => {
            return unavailable("store_unavailable", &e);
        }
    };
    let Some(row) = rows.into_iter().find(|k| k.id == id) else {
        return api_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "unknown_key",
            &format!("no key `{id}`"),
            Value::Null,
        );
    };
    let now = match state.orchestrator.clock().now() {
        Ok(now) => now,
        Err(e) => return clock_unavailable(&e),
    };
    match state.store.revoke_api_key(&id, now) {
        Ok(_) => {
            state.keys.remove(&row.sha256);
            Json(json!({"id": id, "revoked": true})).into_response()
        }
        Err(e) => unavailable("store_unavailable", &e),
    }
}
