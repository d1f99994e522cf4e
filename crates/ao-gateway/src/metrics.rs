//! Prometheus metrics, in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ao_orchestrator::{Orchestrator, Spend};

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0,
];

#[derive(Debug, Default)]
struct Counters {
    /// Requests by agent, then by outcome: looked up without allocating once an agent is known.
    requests: BTreeMap<String, BTreeMap<&'static str, u64>>,
    spend: BTreeMap<String, u64>,
    latency: [u64; BUCKETS.len()],
    latency_sum: f64,
    latency_count: u64,
}

/// The gateway's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Counters>,
}

impl Metrics {
    /// Counts a finished request of `agent` with `outcome`, which took `elapsed`.
    pub(crate) fn request(&self, agent: &str, outcome: &'static str, elapsed: Duration) {
        let Ok(mut m) = self.inner.lock() else {
            return;
        };
        match m.requests.get_mut(agent) {
            Some(outcomes) => *outcomes.entry(outcome).or_default() += 1,
            None => {
                m.requests
                    .insert(agent.to_owned(), BTreeMap::from([(outcome, 1)]));
            }
        }
        let secs = elapsed.as_secs_f64();
        for (bucket, bound) in m.latency.iter_mut().zip(BUCKETS) {
            if secs <= bound {
                *bucket += 1;
            }
        }
        m.latency_sum += secs;
        m.latency_count += 1;
    }

    /// Counts `sats` spent by `agent`.
    pub(crate) fn spend(&self, agent: &str, sats: u64) {
        if let Ok(mut m) = self.inner.lock() {
            match m.spend.get_mut(agent) {
                Some(total) => *total = total.saturating_add(sats),
                None => {
                    m.spend.insert(agent.to_owned(), sats);
                }
            }
        }
    }

    /// The metrics as Prometheus text, with gauges read from the orchestrator now and each
    /// agent's spend as `spends` gives it (`None`: the budgets could not be read, and
    /// `ao_budget_unavailable` says so).
    pub fn render(
        &self,
        orchestrator: &Orchestrator,
        spends: Option<&[(String, Spend)]>,
        started: Instant,
    ) -> String {
        let mut out = String::new();
        {
            let Ok(m) = self.inner.lock() else {
                return "# metrics unavailable\n".into();
            };
            render_counters(&mut out, &m, orchestrator);
        }
        render_gauges(&mut out, orchestrator, spends, started);
        out
    }
}

/// Writes the `# HELP` and `# TYPE` lines of a metric family. Writing to a String cannot fail.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Requests, spend, backend errors and the latency histogram, counted since the start.
fn render_counters(out: &mut String, m: &Counters, orchestrator: &Orchestrator) {
    family(
        out,
        "ao_requests_total",
        "counter",
        "Chat completion requests, by agent and outcome.",
    );
    for (agent, outcomes) in &m.requests {
        for (outcome, n) in outcomes {
            let _ = writeln!(
                out,
                "ao_requests_total{{agent=\"{agent}\",outcome=\"{outcome}\"}} {n}"
            );
        }
    }
    family(
        out,
        "ao_spend_sats_total",
        "counter",
        "Sats settled through the gateway since it started.",
    );
    for (agent, sats) in &m.spend {
        let _ = writeln!(out, "ao_spend_sats_total{{agent=\"{agent}\"}} {sats}");
    }
    family(
        out,
        "ao_backend_errors_total",
        "counter",
        "Failed tries at a backend (unreachable, timeout, 429, 5xx).",
    );
    for (provider, n) in orchestrator.pool().failure_counts() {
        let _ = writeln!(
            out,
            "ao_backend_errors_total{{provider=\"{provider}\"}} {n}"
        );
    }
    family(
        out,
        "ao_overage_sats_total",
        "counter",
        "Sats providers billed beyond what was reserved for the call.",
    );
    let _ = writeln!(out, "ao_overage_sats_total {}", orchestrator.overage_sats());
    family(
        out,
        "ao_request_duration_seconds",
        "histogram",
        "Time from request to response headers.",
    );
    for (bound, n) in BUCKETS.iter().zip(m.latency) {
        let _ = writeln!(
            out,
            "ao_request_duration_seconds_bucket{{le=\"{bound}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "ao_request_duration_seconds_bucket{{le=\"+Inf\"}} {}",
        m.latency_count
    );
    let _ = writeln!(out, "ao_request_duration_seconds_sum {}", m.latency_sum);
    let _ = writeln!(out, "ao_request_duration_seconds_count {}", m.latency_count);
}

/// Spend today, reservations in flight, pending writes and uptime, read now.
fn render_gauges(
    out: &mut String,
    orchestrator: &Orchestrator,
    spends: Option<&[(String, Spend)]>,
    started: Instant,
) {
    family(
        out,
        "ao_budget_unavailable",
        "gauge",
        "1 when the budgets (in the shared database) could not be read for this scrape.",
    );
    let _ = writeln!(out, "ao_budget_unavailable {}", u8::from(spends.is_none()));
    let spends = spends.unwrap_or_default();
    family(
        out,
        "ao_spend_today_sats",
        "gauge",
        "Settled and reserved sats today (UTC).",
    );
    for (agent, spend) in spends {
        let _ = writeln!(
            out,
            "ao_spend_today_sats{{agent=\"{agent}\"}} {}",
            spend.sats
        );
    }
    family(
        out,
        "ao_reservations_outstanding",
        "gauge",
        "Budget reservations in flight.",
    );
    for (agent, spend) in spends {
        let n = spend.outstanding;
        let _ = writeln!(out, "ao_reservations_outstanding{{agent=\"{agent}\"}} {n}");
    }
    family(
        out,
        "ao_pending_writes",
        "gauge",
        "Costs and audit entries not yet written.",
    );
    let _ = writeln!(out, "ao_pending_writes {}", orchestrator.pending_writes());
    family(
        out,
        "ao_uptime_seconds",
        "gauge",
        "Seconds since the gateway started.",
    );
    let _ = writeln!(out, "ao_uptime_seconds {}", started.elapsed().as_secs());
}
