//! The agent's own events, signed by its signer nodes (the `[signing]` section):
//! `POST /admin/signing/profile` signs its NIP-SA profile (kind 39200) again and returns it, and
//! `POST /admin/audit/agent-checkpoint` signs the head of the audit log as the agent's checkpoint
//! (kind 39230), stores it and returns it. The gateway holds no share: the nodes sign, and what
//! they return is verified before it is used.
//!
//! Without `[signing]` both answer 409 `signing_not_configured`. Nodes that do not sign (too few
//! answer within the timeout, they refuse, the relays are down) are a 503 `signing_unavailable`
//! naming each node and why, once the coordinator has given up.

use std::sync::Arc;

use ao_orchestrator::SigningError;
use ao_store::StoreError;
use ao_types::Report;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::audit::{agent_key, checkpoint_json, operators};
use super::unavailable;
use crate::AppState;
use crate::errors::api_error;

/// The label of a checkpoint when the request names none (as `ao audit checkpoint` has it).
const DEFAULT_LABEL: &str = "default";

/// The longest label accepted.
const MAX_LABEL: usize = 128;

/// 409: no `[signing]` is configured, so nothing can be signed.
fn not_configured() -> Response {
    api_error(
        StatusCode::CONFLICT,
        "invalid_request_error",
        "signing_not_configured",
        "no [signing] section is configured: the gateway signs the agent's events only through the signer nodes named there",
        Value::Null,
    )
}

/// A signing that failed: 503 when the nodes did not sign (or the clock cannot be read), 502
/// when what they returned does not verify, 500 for an event that cannot be made.
fn signing_error(error: &SigningError) -> Response {
    let (status, code) = match error {
        SigningError::Nodes { .. } => (StatusCode::SERVICE_UNAVAILABLE, "signing_unavailable"),
        SigningError::Clock(_) => (StatusCode::SERVICE_UNAVAILABLE, "clock_unavailable"),
        SigningError::Invalid { .. } => (StatusCode::BAD_GATEWAY, "signature_invalid"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "signing_failed"),
    };
    tracing::error!(error = %Report::new(error), "an admin signing request failed");
    api_error(
        status,
        "api_error",
        code,
        &Report::new(error).to_string(),
        Value::Null,
    )
}

/// Signs the agent's profile again: 200 with the signed event (as Nostr JSON).
pub(super) async fn profile(State(state): State<Arc<AppState>>) -> Response {
    let Some(signing) = state.orchestrator.signing() else {
        return not_configured();
    };
    match signing.profile().await {
        Ok(event) => {
            tracing::info!(agent = signing.agent(), id = %event.id, "agent profile signed by the signer nodes");
            Json(event).into_response()
        }
        Err(e) => signing_error(&e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointRequest {
    label: Option<String>,
}

/// The label of a checkpoint request (an empty body names none), or why it is refused.
fn label(body: &Bytes) -> Result<String, String> {
    let request: CheckpointRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CheckpointRequest::default()
    } else {
        serde_json::from_slice(body)
            .map_err(|e| format!("expected {{\"label\": \"...\"}} or no body: {e}"))?
    };
    let label = request.label.unwrap_or_else(|| DEFAULT_LABEL.to_owned());
    if label.is_empty() || label.chars().count() > MAX_LABEL || label.chars().any(char::is_control)
    {
        return Err(format!(
            "a label is 1 to {MAX_LABEL} characters, none of them control characters"
        ));
    }
    Ok(label)
}

/// Signs the head of the audit log as the agent's checkpoint through the signer nodes, and stores
/// it with its audit entry: 201 with the checkpoint (`id`, `seq`, `hash`, `label`, `signer`, `kind`,
/// `stored`) and the signed `event`; 404 while the log is empty.
pub(super) async fn agent_checkpoint(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let label = match label(&body) {
        Ok(label) => label,
        Err(message) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_json",
                &message,
                Value::Null,
            );
        }
    };
    let Some(signing) = state.orchestrator.signing() else {
        return not_configured();
    };
    // The entries of calls still being written belong to the log the checkpoint signs.
    state.orchestrator.drain().await;
    let read = state
        .store
        .head()
        .and_then(|head| Ok((head, state.store.application_id()?)));
    let (head, application_id) = match read {
        Ok((Some(head), application_id)) => (head, application_id),
        Ok((None, _)) => {
            return api_error(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "empty_log",
                "the audit log is empty: there is nothing to checkpoint yet",
                Value::Null,
            );
        }
        Err(e) => return unavailable("audit_unavailable", &e),
    };
    let checkpoint = match signing.checkpoint(&head, application_id, &label).await {
        Ok(checkpoint) => checkpoint,
        Err(e) => return signing_error(&e),
    };
    match state.store.add_checkpoint(&checkpoint) {
        Ok(stored) => {
            tracing::info!(id = %checkpoint.event.id, seq = head.seq, "audit checkpoint signed by the signer nodes");
            let mut body = checkpoint_json(&checkpoint, &operators(&state), agent_key(&state));
            body["stored"] = json!(stored);
            body["event"] = json!(checkpoint.event);
            (StatusCode::CREATED, Json(body)).into_response()
        }
        Err(e @ StoreError::Checkpoint(_)) => api_error(
            StatusCode::CONFLICT,
            "invalid_request_error",
            "checkpoint_mismatch",
            &Report::new(&e).to_string(),
            Value::Null,
        ),
        Err(e) => unavailable("store_unavailable", &e),
    }
}
