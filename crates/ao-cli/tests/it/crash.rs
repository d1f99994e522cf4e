//! `kill -9` of a real `ao serve` in the middle of a burst, against a provider that bills every
//! request that reaches it: after a restart, every billed sat is charged.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent_orchestrator::budget::Ledger;
use agent_orchestrator::store::SqliteStore;
use ao_sim::{Behavior, SimServer};
use serde_json::json;

use crate::path_str;

const KEY: &str = "ao-test-crash-key";

/// Starts `ao serve` with `config` and returns it with the address it listens on.
fn serve(config: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ao"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            path_str(config),
        ])
        .env_remove("AO_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the gateway exited before printing its address"))
            .unwrap();
        if let Some(rest) = line.strip_prefix("agent-orchestrator gateway listening on http://") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep reading its output, so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_burst_leaves_nothing_billed_uncharged() {
    let provider = SimServer::start(Behavior::Hang(Duration::from_secs(3)))
        .await
        .unwrap();
    provider.bill_like_a_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ao.toml");
    std::fs::write(
        &config,
        format!(
            r#"
data_dir = "{dir}"
default_backend = "openai"

[[backends]]
provider = "openai"
model = "gpt-4o"
endpoint = "{url}"
cost_per_1k_input = 5
cost_per_1k_output = 15
timeout_secs = 30
max_retries = 0

[agents.burst]
autonomy = "fully-autonomous"
api_key_sha256 = "{hash}"
budget = {{ daily_limit_sats = 100000, session_limit_sats = 100000 }}
"#,
            dir = dir.path().display(),
            url = provider.url(),
            hash = agent_orchestrator::gateway::hash_key(KEY),
        ),
    )
    .unwrap();
    let (mut gateway, addr) = serve(&config);
    let url = format!("http://{addr}/v1/chat/completions");
    let burst: Vec<_> = (0..20)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                let body = json!({"model": "auto", "max_tokens": 200 + i, "messages": [{"role": "user", "content": "x".repeat(100 * i)}]});
                let _ = reqwest::Client::new()
                    .post(url)
                    .bearer_auth(KEY)
                    .json(&body)
                    .send()
                    .await;
            })
        })
        .collect();
    let started = Instant::now();
    while provider.requests() < 20 && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(provider.requests(), 20, "the burst reached the provider");
    // SIGKILL: no destructor, no drain, no goodbye; twenty calls are in flight.
    gateway.kill().unwrap();
    gateway.wait().unwrap();
    for call in burst {
        call.await.unwrap();
    }
    let billed = provider.billed_sats(5, 15);
    assert!(billed > 0);
    {
        let store = SqliteStore::open(dir.path().join("ao.db")).unwrap();
        assert_eq!(
            store.holds().unwrap().len(),
            20,
            "every dispatched call was held"
        );
    }

    // The restart finds the holds and charges them.
    let (mut restarted, _) = serve(&config);
    let stopped = Command::new("kill")
        .args(["-TERM", &restarted.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(restarted.wait().unwrap().success());
    let store = SqliteStore::open(dir.path().join("ao.db")).unwrap();
    assert!(store.holds().unwrap().is_empty());
    let charged: u64 = store
        .load_agent_range("burst", 0, u64::MAX)
        .unwrap()
        .iter()
        .map(|r| r.cost_sats)
        .sum();
    assert!(
        charged >= billed,
        "charged {charged} sats after the restart, the provider billed {billed}"
    );
    let recovered = agent_orchestrator::audit::AuditLog::entries(&store, 1, usize::MAX)
        .unwrap()
        .into_iter()
        .filter(|e| e.detail_json().unwrap()["outcome"] == "recovered")
        .count();
    assert_eq!(recovered, 20, "each recovered charge is audited");
}
