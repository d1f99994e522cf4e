//! OpenAI-style error responses.

use ao_approvals::ApprovalError;
use ao_budget::{BudgetError, RateError};
use ao_orchestrator::OrchestratorError;
use ao_routing::http::{BackendError, EstimateError};
use ao_types::Report;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// An error body in the OpenAI shape: `{"error": {"message", "type", "code", ...}}`.
pub(crate) fn api_error(
    status: StatusCode,
    kind: &str,
    code: &str,
    message: &str,
    extra: Value,
) -> Response {
    let mut error = Map::new();
    error.insert("message".into(), json!(message));
    error.insert("type".into(), json!(kind));
    error.insert("code".into(), json!(code));
    if let Value::Object(fields) = extra {
        error.extend(fields);
    }
    (status, Json(json!({ "error": error }))).into_response()
}

/// The outcome label of an error, for metrics.
pub(crate) fn outcome(error: &OrchestratorError) -> &'static str {
    match error {
        OrchestratorError::Budget(_) => "over_budget",
        OrchestratorError::RateLimited(_) => "rate_limited",
        OrchestratorError::NeedsApproval { .. } => "needs_approval",
        OrchestratorError::NotApproved { .. } | OrchestratorError::ApprovalMismatch { .. } => {
            "not_approved"
        }
        OrchestratorError::Backend(_) => "backend_error",
        _ => "error",
    }
}

/// The response for an orchestrator error; `now` (when the clock could be read) dates the
/// `Retry-After` of a budget refusal.
pub(crate) fn from_orchestrator(error: &OrchestratorError, now: Option<u64>) -> Response {
    let message = Report::new(error).to_string();
    match error {
        OrchestratorError::UnknownAgent { .. } => api_error(
            StatusCode::FORBIDDEN,
            "permission_error",
            "agent_not_configured",
            &message,
            Value::Null,
        ),
        OrchestratorError::Budget(budget) => budget_error(budget, &message, now),
        OrchestratorError::RateLimited(limit) => rate_limited(limit, &message),
        OrchestratorError::BadRequest(cause) => api_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            match cause {
                EstimateError::BadChoices { .. } => "invalid_n",
                _ => "unpriceable_content",
            },
            &message,
            Value::Null,
        ),
        OrchestratorError::NeedsApproval { .. }
        | OrchestratorError::ApprovalMismatch { .. }
        | OrchestratorError::NotApproved { .. }
        | OrchestratorError::Approval(ApprovalError::TooManyPending { .. }) => {
            approval_response(error, &message)
        }
        OrchestratorError::Backend(fallback) => {
            let (status, code) = match fallback.last() {
                Some(BackendError::Timeout { .. }) => {
                    (StatusCode::GATEWAY_TIMEOUT, "backend_timeout")
                }
                // A data vending machine paid nothing (released), or paid and silent (charged).
                Some(BackendError::Unpaid { .. }) => (StatusCode::BAD_GATEWAY, "backend_unpaid"),
                Some(BackendError::PaidUnanswered { .. }) => {
                    (StatusCode::BAD_GATEWAY, "backend_paid_no_result")
                }
                _ => (StatusCode::BAD_GATEWAY, "backend_error"),
            };
            api_error(status, "api_error", code, &message, Value::Null)
        }
        OrchestratorError::Clock(_)
        | OrchestratorError::Approval(
            ApprovalError::Store(_)
            | ApprovalError::NotStored { .. }
            | ApprovalError::Clock(_)
            | ApprovalError::Poisoned,
        ) => api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            "unavailable",
            &message,
            Value::Null,
        ),
        OrchestratorError::Routing(_) => api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            "no_backend",
            &message,
            Value::Null,
        ),
        _ => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "internal_error",
            &message,
            Value::Null,
        ),
    }
}

/// The response for a call an approval stopped: 403 with the approval id, or 429 when the agent
/// has too many requests waiting.
fn approval_response(error: &OrchestratorError, message: &str) -> Response {
    let message = message.to_owned();
    match error {
        OrchestratorError::NeedsApproval { request_id } => api_error(
            StatusCode::FORBIDDEN,
            "approval_required",
            "approval_required",
            &format!(
                "{message}; retry with the header `X-AO-Approval: {request_id}` once it is approved"
            ),
            json!({ "approval_id": request_id }),
        ),
        OrchestratorError::ApprovalMismatch { request_id } => api_error(
            StatusCode::FORBIDDEN,
            "approval_required",
            "approval_mismatch",
            &message,
            json!({ "approval_id": request_id }),
        ),
        OrchestratorError::Approval(ApprovalError::TooManyPending {
            retry_after_secs, ..
        }) => {
            let mut response = api_error(
                StatusCode::TOO_MANY_REQUESTS,
                "approval_required",
                "too_many_pending_approvals",
                &message,
                json!({ "retry_after_secs": retry_after_secs }),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            response
        }
        OrchestratorError::NotApproved {
            request_id, status, ..
        } => api_error(
            StatusCode::FORBIDDEN,
            "approval_required",
            "approval_not_granted",
            &message,
            json!({ "approval_id": request_id, "status": status.map(|s| s.as_str()) }),
        ),
        _ => api_error(
            StatusCode::FORBIDDEN,
            "approval_required",
            "approval_required",
            &message,
            Value::Null,
        ),
    }
}

/// 429 for a rate limit, naming it, with `Retry-After`.
fn rate_limited(error: &RateError, message: &str) -> Response {
    let limit = match error {
        RateError::RequestsPerMinute { .. } => "requests_per_minute",
        RateError::TokensPerMinute { .. } => "tokens_per_minute",
        RateError::Concurrent { .. } => "concurrent",
        _ => "unavailable",
    };
    let retry_after = error.retry_after_secs();
    let mut response = api_error(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit_exceeded",
        "rate_limited",
        message,
        json!({"limit": limit, "retry_after_secs": retry_after}),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

fn budget_error(error: &BudgetError, message: &str, now: Option<u64>) -> Response {
    let (code, extra, resets_at) = match error {
        BudgetError::DailyExceeded {
            limit_sats,
            spent_sats,
            requested_sats,
            resets_at,
            ..
        } => (
            "daily_budget_exceeded",
            json!({"limit": "daily", "limit_sats": limit_sats, "spent_sats": spent_sats, "requested_sats": requested_sats, "resets_at": resets_at}),
            Some(*resets_at),
        ),
        // The gateway's sessions are UTC days (the agent cannot choose its session start), so a
        // session budget resets when the day does.
        BudgetError::SessionExceeded {
            limit_sats,
            spent_sats,
            requested_sats,
            ..
        } => {
            let resets_at = now.map(ao_types::utc_day_end);
            (
                "session_budget_exceeded",
                json!({"limit": "session", "limit_sats": limit_sats, "spent_sats": spent_sats, "requested_sats": requested_sats, "resets_at": resets_at}),
                resets_at,
            )
        }
        BudgetError::DailyTokensExceeded {
            limit_tokens,
            used_tokens,
            requested_tokens,
            resets_at,
            ..
        } => (
            "daily_token_cap_exceeded",
            json!({"limit": "daily_tokens", "limit_tokens": limit_tokens, "used_tokens": used_tokens, "requested_tokens": requested_tokens, "resets_at": resets_at}),
            Some(*resets_at),
        ),
        // The budget could not be checked (ledger down, clock): refuse, but not as "over budget".
        _ => {
            return api_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                "budget_unavailable",
                message,
                Value::Null,
            );
        }
    };
    let mut response = api_error(
        StatusCode::TOO_MANY_REQUESTS,
        "budget_exceeded",
        code,
        message,
        extra,
    );
    if let (Some(at), Some(now)) = (resets_at, now)
        && let Ok(value) = HeaderValue::from_str(&at.saturating_sub(now).to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}
