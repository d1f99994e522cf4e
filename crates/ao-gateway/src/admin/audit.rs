//! `/admin/audit`: the log, its verification, and checkpoints. The server never holds the
//! operator's key: it hands out the head to sign (`GET /admin/audit/head`) and stores a
//! checkpoint signed elsewhere (`POST /admin/audit/checkpoint`) once it has checked that the
//! signer is a configured operator and that the checkpoint names this log.

use std::sync::Arc;

use ao_audit::{AuditLog, CHECKPOINT_KIND, Checkpoint, parse_checkpoint_json};
use ao_store::{AuditReport, StoreError};
use ao_types::Report;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nostr::PublicKey;
use serde::Deserialize;
use serde_json::{Value, json};

use super::unavailable;
use crate::AppState;
use crate::errors::api_error;

#[derive(Debug, Deserialize)]
pub(super) struct Page {
    #[serde(default = "one")]
    from: u64,
    #[serde(default = "hundred")]
    limit: usize,
}

fn one() -> u64 {
    1
}

pub(super) fn hundred() -> usize {
    100
}

pub(super) async fn entries(
    State(state): State<Arc<AppState>>,
    Query(page): Query<Page>,
) -> Response {
    match state.store.entries(page.from, page.limit.min(10_000)) {
        Ok(entries) => {
            let entries: Vec<Value> = entries
                .into_iter()
                .map(|e| json!({"seq": e.seq, "timestamp": e.timestamp, "kind": e.kind, "agent": e.agent, "detail": e.detail_json().unwrap_or(Value::Null), "prev_hash": e.prev_hash, "hash": e.hash}))
                .collect();
            Json(json!({ "entries": entries })).into_response()
        }
        Err(e) => unavailable("audit_unavailable", &e),
    }
}

/// The operators' keys, from every agent's `operator`: who may sign a checkpoint.
pub(super) fn operators(state: &AppState) -> Vec<PublicKey> {
    state
        .orchestrator
        .agent_names()
        .filter_map(|name| state.orchestrator.coordinator(name))
        .filter_map(|c| c.identity().operator_pubkey.as_deref())
        .filter_map(|key| PublicKey::parse(key).ok())
        .collect()
}

/// The agent's key, when its signer nodes sign its checkpoints (`[signing]`).
pub(super) fn agent_key(state: &AppState) -> Option<PublicKey> {
    state.orchestrator.signing().map(|s| s.public_key())
}

/// A checkpoint as the admin API shows it: who signed it, an operator (kind 30078) or the agent
/// through its signer nodes (kind 39230).
pub(super) fn checkpoint_json(
    checkpoint: &Checkpoint,
    operators: &[PublicKey],
    agent: Option<PublicKey>,
) -> Value {
    json!({
        "id": checkpoint.event.id.to_hex(),
        "kind": checkpoint.event.kind.as_u16(),
        "seq": checkpoint.head.seq,
        "hash": checkpoint.head.hash,
        "label": checkpoint.label,
        "signer": checkpoint.signer.to_hex(),
        "by_operator": operators.contains(&checkpoint.signer),
        "by_agent": agent == Some(checkpoint.signer),
        "created_at": checkpoint.created_at,
    })
}

fn report_json(report: &AuditReport, operators: &[PublicKey], agent: Option<PublicKey>) -> Value {
    let findings: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
    let mut body = json!({
        "intact": report.is_intact(),
        "entries": report.entries,
        "head": report.head,
        "cost_records": report.cost_records,
        "api_keys": report.api_keys,
        "checkpoints": report.checkpoints.iter().map(|c| checkpoint_json(c, operators, agent)).collect::<Vec<_>>(),
        "findings": findings,
    });
    if let Some(first) = report.findings.first() {
        body["broken_at"] = json!(first.entry());
        body["reason"] = json!(first.to_string());
    }
    body
}

/// The chain, every row it vouches for, and every stored checkpoint: 200 when intact, 409 with
/// every finding when not.
pub(super) async fn verify(State(state): State<Arc<AppState>>) -> Response {
    state.orchestrator.drain().await;
    match state.store.audit_report() {
        Ok(report) => {
            let status = if report.is_intact() {
                StatusCode::OK
            } else {
                StatusCode::CONFLICT
            };
            let body = report_json(&report, &operators(&state), agent_key(&state));
            (status, Json(body)).into_response()
        }
        Err(e) => unavailable("audit_unavailable", &e),
    }
}

/// The head to sign: `{"seq", "hash", "application_id", "kind"}`.
pub(super) async fn head(State(state): State<Arc<AppState>>) -> Response {
    let read = state
        .store
        .head()
        .and_then(|head| Ok((head, state.store.application_id()?)));
    match read {
        Ok((Some(head), application_id)) => Json(json!({
            "seq": head.seq,
            "hash": head.hash,
            "application_id": format!("{application_id:#010x}"),
            "kind": CHECKPOINT_KIND,
        }))
        .into_response(),
        Ok((None, _)) => api_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "empty_log",
            "the audit log is empty: there is nothing to checkpoint yet",
            Value::Null,
        ),
        Err(e) => unavailable("audit_unavailable", &e),
    }
}

/// Stores a checkpoint signed by an operator: 201 when stored, 200 when it already was, 400 when
/// it is not a valid checkpoint event, 403 when its signer is not a configured operator, 409 when
/// it does not name this log.
pub(super) async fn checkpoint(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let refused = |status, code, message: &str| {
        api_error(status, "invalid_request_error", code, message, Value::Null)
    };
    let parsed = std::str::from_utf8(&body)
        .map_err(|_| ao_audit::CheckpointError::NotAnEvent)
        .and_then(parse_checkpoint_json);
    let checkpoint = match parsed {
        Ok(checkpoint) => checkpoint,
        Err(e) => {
            return refused(
                StatusCode::BAD_REQUEST,
                "invalid_checkpoint",
                &e.to_string(),
            );
        }
    };
    let operators = operators(&state);
    if !operators.contains(&checkpoint.signer) {
        return refused(
            StatusCode::FORBIDDEN,
            "not_an_operator",
            "the checkpoint is not signed by an operator: sign it with the key of an agent's `operator`",
        );
    }
    match state.store.add_checkpoint(&checkpoint) {
        Ok(stored) => {
            let status = if stored {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let mut body = checkpoint_json(&checkpoint, &operators, agent_key(&state));
            body["stored"] = json!(stored);
            (status, Json(body)).into_response()
        }
        Err(e @ StoreError::Checkpoint(_)) => refused(
            StatusCode::CONFLICT,
            "checkpoint_mismatch",
            &Report::new(&e).to_string(),
        ),
        Err(e) => unavailable("store_unavailable", &e),
    }
}
