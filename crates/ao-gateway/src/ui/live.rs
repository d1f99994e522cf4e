//! The pending approvals, live: `GET /ui/api/approvals/stream`, server-sent events.
//!
//! The handler reads every agent's pending list once a second ([`POLL`]) and sends it, whole,
//! as a `pending` event when it differs from the last one sent (and once at the start). The
//! coordinators wake waiters per request, but have no signal for "the list changed", and a
//! second of delay is nothing to a person; a poll keeps this module out of `ao-approvals`.
//! A comment line every 15 s keeps proxies and the idle timeout from closing a quiet stream.
//!
//! A stream ends when its session is closed or expires (checked at every poll), and when the
//! gateway shuts down, so a graceful shutdown never waits for a browser tab.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ao_approvals::{ApprovalError, Verdict};
use axum::Extension;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::session::SessionInfo;
use crate::AppState;

/// How often a stream reads the pending lists.
pub(crate) const POLL: Duration = Duration::from_secs(1);

/// Every agent's pending approvals, oldest first, with what the console needs to decide them:
/// when each expires, and whether an approval must be a signed event and by whom. With the
/// time it was read at.
pub(crate) fn pending_json(state: &AppState) -> Result<(u64, Value), ApprovalError> {
    let now = state.orchestrator.clock().now()?;
    let mut pending = Vec::new();
    for name in state.orchestrator.agent_names() {
        let Some(coordinator) = state.orchestrator.coordinator(name) else {
            continue;
        };
        for request in coordinator.try_list_pending()? {
            // A request decided between the two reads is simply not shown.
            let Some(record) = coordinator.record(&request.request_id) else {
                continue;
            };
            let votes = record
                .votes
                .iter()
                .filter(|v| v.verdict == Verdict::Approve)
                .count();
            pending.push(json!({
                "agent": name,
                "request_id": request.request_id,
                "action_type": request.action_type,
                "description": request.description,
                "cost_estimate_sats": request.cost_estimate_sats,
                "created_at": request.created_at,
                "expires_at": record.expires_at,
                "signature_required": !record.policy.allow_unsigned,
                "approvers": record.policy.approvers,
                "approvals_required": record.policy.required,
                "approvals_so_far": votes,
            }));
        }
    }
    pending.sort_by_key(|p| (p["created_at"].as_u64(), p["request_id"].to_string()));
    Ok((now, Value::Array(pending)))
}

/// What a stream carries between polls.
struct Poll {
    state: Arc<AppState>,
    session: String,
    closing: watch::Receiver<bool>,
    last: Option<String>,
    first: bool,
}

impl Poll {
    /// The next event to send, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if !self.first {
                tokio::select! {
                    () = tokio::time::sleep(POLL) => {}
                    _ = self.closing.wait_for(|closing| *closing) => return None,
                }
            }
            self.first = false;
            if *self.closing.borrow() {
                return None;
            }
            if !self
                .state
                .console
                .sessions
                .is_open(&self.session, Instant::now())
            {
                return None;
            }
            // Compared without the time, so an unchanged list is not sent again.
            let (name, key, data) = match pending_json(&self.state) {
                Ok((now, list)) => {
                    let key = list.to_string();
                    ("pending", key, json!({"now": now, "pending": list}))
                }
                Err(e) => {
                    let message = ao_types::Report::new(&e).to_string();
                    ("failure", message.clone(), json!({ "message": message }))
                }
            };
            if self.last.as_deref() == Some(key.as_str()) {
                continue;
            }
            self.last = Some(key);
            return Some(Event::default().event(name).data(data.to_string()));
        }
    }
}

/// `GET /ui/api/approvals/stream`.
pub(crate) async fn pending_stream(
    State(state): State<Arc<AppState>>,
    Extension(session): Extension<SessionInfo>,
) -> Response {
    let closing = state.console.closing();
    let poll = Poll {
        state,
        session: session.id,
        closing,
        last: None,
        first: true,
    };
    Sse::new(events(poll))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn events(poll: Poll) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(poll, |mut poll| async move {
        let event = poll.next().await?;
        Some((Ok(event), poll))
    })
}
