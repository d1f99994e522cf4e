//! What only the console asks for: each agent's spend against both of its limits, and spend
//! over time from the ledger.

use std::collections::BTreeMap;
use std::sync::Arc;

use ao_budget::{BudgetStatus, CostRecord, Ledger};
use ao_types::{Report, utc_day_start};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::errors::api_error;

fn unavailable(code: &str, error: &dyn std::error::Error) -> Response {
    api_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "api_error",
        code,
        &Report::new(error).to_string(),
        Value::Null,
    )
}

/// `GET /ui/api/budgets`: every agent's limits, today's and this session's spend (settled plus
/// outstanding reservations; the gateway's session is the UTC day), its outstanding reservations
/// and its budget status. A figure that cannot be read fails the whole answer (503): the console
/// never shows a spend it does not know.
pub(crate) async fn budgets(State(state): State<Arc<AppState>>) -> Response {
    let now = match state.orchestrator.clock().now() {
        Ok(now) => now,
        Err(e) => return unavailable("clock_unavailable", &e),
    };
    let spends = match crate::admin::spends(&state.orchestrator).await {
        Ok(spends) => spends,
        Err(e) => return unavailable("budget_unavailable", &e),
    };
    let tracker = state.orchestrator.tracker();
    let mut list = Vec::with_capacity(spends.len());
    for (name, spend) in spends {
        let budget = tracker.budget_for(&name);
        let autonomy = state
            .orchestrator
            .coordinator(&name)
            .map(|c| c.identity().autonomy_level.as_str());
        // The gateway's session is the UTC day: the session's spend is the day's.
        list.push(json!({
            "agent": name,
            "autonomy": autonomy,
            "daily_limit_sats": budget.daily_limit_sats,
            "session_limit_sats": budget.session_limit_sats,
            "warn_threshold_pct": budget.warn_threshold_pct,
            "spent_today_sats": spend.sats,
            "spent_session_sats": spend.sats,
            "outstanding_reservations": spend.outstanding,
            "budget_status": status_word(spend.status),
        }));
    }
    Json(json!({ "now": now, "agents": list })).into_response()
}

/// A budget status as one word: `ok`, `warning`, `session_exceeded` or `daily_exceeded`.
fn status_word(status: BudgetStatus) -> &'static str {
    match status {
        BudgetStatus::Ok => "ok",
        BudgetStatus::Warning { .. } => "warning",
        BudgetStatus::SessionExceeded => "session_exceeded",
        BudgetStatus::DailyExceeded => "daily_exceeded",
    }
}

/// The window of a spend chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(crate) enum Range {
    /// The last 24 hours, by the hour (the current hour last).
    #[serde(rename = "24h")]
    Day,
    /// The last 7 UTC days, by the day (today last).
    #[serde(rename = "7d")]
    Week,
}

impl Range {
    /// The first bucket's start, the width of a bucket and how many there are, at `now`.
    pub(crate) fn buckets(self, now: u64) -> (u64, u64, usize) {
        match self {
            Range::Day => ((now / 3_600).saturating_sub(23) * 3_600, 3_600, 24),
            Range::Week => (utc_day_start(now).saturating_sub(6 * 86_400), 86_400, 7),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Range::Day => "24h",
            Range::Week => "7d",
        }
    }
}

/// Sats spent per agent in each of `count` buckets of `width` seconds from `from`; records
/// outside them are left out. Every agent of `agents` has a row, spent or not.
pub(crate) fn bucket(
    records: &[CostRecord],
    agents: &[&str],
    (from, width, count): (u64, u64, usize),
) -> BTreeMap<String, Vec<u64>> {
    let mut rows: BTreeMap<String, Vec<u64>> = agents
        .iter()
        .map(|a| ((*a).to_owned(), vec![0; count]))
        .collect();
    for record in records {
        let Some(offset) = record.timestamp.checked_sub(from) else {
            continue;
        };
        let Ok(index) = usize::try_from(offset / width.max(1)) else {
            continue;
        };
        if index >= count {
            continue;
        }
        let row = rows
            .entry(record.agent_name.clone())
            .or_insert_with(|| vec![0; count]);
        row[index] = row[index].saturating_add(record.cost_sats);
    }
    rows
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpendQuery {
    range: Range,
}

/// `GET /ui/api/spend?range=24h|7d`: settled spend per agent from the ledger, hourly over the
/// last 24 hours or daily over the last 7 days. One read of the ledger, off the async threads.
pub(crate) async fn spend(
    State(state): State<Arc<AppState>>,
    Query(query): Query<SpendQuery>,
) -> Response {
    let now = match state.orchestrator.clock().now() {
        Ok(now) => now,
        Err(e) => return unavailable("clock_unavailable", &e),
    };
    let buckets = query.range.buckets(now);
    let (from, width, count) = buckets;
    let until = from.saturating_add(width.saturating_mul(count as u64));
    let store = state.store.clone();
    let records = match tokio::task::spawn_blocking(move || store.load_range(from, until)).await {
        Ok(Ok(records)) => records,
        Ok(Err(e)) => return unavailable("ledger_unavailable", &e),
        Err(e) => return unavailable("ledger_unavailable", &e),
    };
    let mut agents: Vec<&str> = state.orchestrator.agent_names().collect();
    agents.sort_unstable();
    let rows = bucket(&records, &agents, buckets);
    Json(json!({
        "range": query.range.as_str(),
        "now": now,
        "from": from,
        "bucket_secs": width,
        "agents": rows,
    }))
    .into_response()
}
