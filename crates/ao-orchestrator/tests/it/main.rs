//! The orchestrator end to end against real OpenAI-compatible servers on loopback (`ao-sim`),
//! configured from TOML, with the SQLite database on disk.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]
#![allow(missing_docs, reason = "test code")]

mod config;
mod dvm;
mod runtime;
mod signing;

use std::path::Path;

use ao_orchestrator::{Config, Orchestrator};
use ao_sim::SimServer;
use ao_store::Store;

/// A configuration with an OpenAI backend (5/15 sats per 1k) at `first` and a Codex backend (3/15)
/// at `second`; agents `oracle` (fully autonomous, routed to OpenAI), `sisyphus` (supervised, on
/// the default Codex) and `poor` (a 10-sat budget).
pub(crate) fn config_text(
    dir: &Path,
    first: &SimServer,
    second: &SimServer,
    wait_secs: u64,
) -> String {
    format!(
        r#"
data_dir = "{dir}"
default_backend = "codex"

[default_budget]
daily_limit_sats = 100000
session_limit_sats = 10000

[approvals]
wait_secs = {wait_secs}

[[backends]]
provider = "openai"
model = "gpt-4"
endpoint = "{first}"
cost_per_1k_input = 5
cost_per_1k_output = 15
timeout_secs = 1
max_retries = 1

[[backends]]
provider = "codex"
model = "sonnet-4"
endpoint = "{second}"
cost_per_1k_input = 3
cost_per_1k_output = 15
timeout_secs = 1
max_retries = 1

[agents.oracle]
backend = "openai"
autonomy = "fully-autonomous"

[agents.sisyphus]
autonomy = "supervised"

[agents.poor]
autonomy = "fully-autonomous"
budget = {{ daily_limit_sats = 10, session_limit_sats = 10 }}
"#,
        dir = dir.display(),
        first = first.url(),
        second = second.url(),
    )
}

pub(crate) fn orchestrator(text: &str) -> (Orchestrator, Store) {
    Orchestrator::from_config(&Config::from_toml(text).unwrap()).unwrap()
}
