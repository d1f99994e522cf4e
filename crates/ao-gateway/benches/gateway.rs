//! The gateway's added latency under load: an open-loop load generator at fixed request rates
//! against the same loopback mock backend, called directly and through the gateway (budgets,
//! approval policy, the SQLite ledger and the audit log on), in the same run. Optionally the
//! LiteLLM proxy against the same mock, for comparison.
//!
//! Run with `cargo xtask bench gateway` (or `cargo bench -p ao-gateway --bench gateway`).
//! Environment: `AO_BENCH_SECS` (seconds per measured run, default 10); `AO_BENCH_LITELLM`, the
//! path of a `litellm` executable to compare with.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    missing_docs,
    reason = "benchmark code"
)]

use std::sync::Arc;
use std::time::Duration;

use ao_gateway::{Gateway, GatewayOptions, KeyRing, hash_key};
use ao_orchestrator::{Config, Orchestrator};
use ao_sim::{Behavior, SimServer};
use serde_json::json;
use tokio::sync::Mutex;

const AGENT_KEY: &str = "ao-bench-agent-key";

#[derive(Debug, Default, Clone)]
struct Stats {
    latencies: Vec<Duration>,
    errors: usize,
    sent: usize,
    elapsed: Duration,
}

impl Stats {
    fn percentile(&self, per_mille: usize) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        self.latencies[(self.latencies.len() - 1) * per_mille / 1_000]
    }

    fn achieved(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// Sends `rate` requests per second for `secs` seconds, on schedule whatever the answers do, and
/// measures each from the time it was due (so a slow server cannot hide its queue).
async fn load(client: &reqwest::Client, url: &str, key: &str, rate: u64, secs: u64) -> Stats {
    load_spread(client, &[url.to_owned()], key, rate, secs).await
}

/// [`load`] spread over `urls` in turn (several gateways behind a round-robin balancer).
async fn load_spread(
    client: &reqwest::Client,
    urls: &[String],
    key: &str,
    rate: u64,
    secs: u64,
) -> Stats {
    let body = json!({"model": "auto", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 32});
    let total = rate * secs;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let stats = Arc::new(Mutex::new(Stats::default()));
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        let (client, url, key, body, stats) = (
            client.clone(),
            urls[i as usize % urls.len()].clone(),
            key.to_owned(),
            body.clone(),
            Arc::clone(&stats),
        );
        tasks.push(tokio::spawn(async move {
            let result = client.post(&url).bearer_auth(&key).json(&body).send().await;
            let ok = match result {
                Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
                Err(_) => false,
            };
            let latency = due.elapsed();
            let mut stats = stats.lock().await;
            stats.sent += 1;
            if ok {
                stats.latencies.push(latency);
            } else {
                stats.errors += 1;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let mut stats = Arc::try_unwrap(stats).unwrap().into_inner();
    stats.elapsed = start.elapsed();
    stats.latencies.sort();
    stats
}

fn config(dir: &std::path::Path, mock: &str, database: &str) -> Config {
    Config::from_toml(&format!(
        r#"
data_dir = "{dir}"
default_backend = "openai"
{database}

[default_budget]
daily_limit_sats = 1000000000000
session_limit_sats = 1000000000000

[[backends]]
provider = "openai"
model = "mock-gpt"
endpoint = "{mock}"
cost_per_1k_input = 5
cost_per_1k_output = 15

# Semi-autonomous: the approval policy is checked on every call (these stay under the threshold).
[agents.bench]
autonomy = "semi-autonomous"
approval_above_sats = 1000000
api_key_sha256 = "{hash}"
"#,
        dir = dir.display(),
        hash = hash_key(AGENT_KEY),
    ))
    .unwrap()
}

fn row(name: &str, stats: &Stats) -> String {
    format!(
        "{name:<28} p50 {:>8.2?}  p99 {:>8.2?}  achieved {:>6.0}/s  errors {}",
        stats.percentile(500),
        stats.percentile(990),
        stats.achieved(),
        stats.errors
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

fn main() {
    let secs: u64 = std::env::var("AO_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let clients = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();

    // The mock: a fixed small reply with usage.
    let mock = servers
        .block_on(SimServer::start(Behavior::Reply {
            content: "Hello.".into(),
            usage: Some((12, 3)),
        }))
        .unwrap();
    let mock_url = format!("{}/chat/completions", mock.url());
    let config = config(dir.path(), &mock.url(), "");
    let gateway_addr = start_gateway(&servers, &config);
    let gateway_url = format!("http://{gateway_addr}/v1/chat/completions");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()
        .unwrap();

    println!(
        "== gateway benchmark: {secs} s per run, open loop, latency from the time each request was due =="
    );
    println!(
        "gateway: budgets on, approval policy on, SQLite ledger (synchronous=FULL) and audit log on"
    );
    // Warm up both paths (connections, caches, the SQLite file).
    clients.block_on(load(&client, &mock_url, "x", 200, 2));
    clients.block_on(load(&client, &gateway_url, AGENT_KEY, 200, 2));

    let mut table = Vec::new();
    for rate in [500u64, 2_000] {
        let direct = clients.block_on(load(&client, &mock_url, "x", rate, secs));
        let via = clients.block_on(load(&client, &gateway_url, AGENT_KEY, rate, secs));
        println!("{}", row(&format!("{rate}/s direct to the mock"), &direct));
        println!("{}", row(&format!("{rate}/s through the gateway"), &via));
        table.push((rate, direct, via));
    }

    println!(
        "\n| rate | direct p50 | direct p99 | gateway p50 | gateway p99 | added p50 | added p99 | errors |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (rate, direct, via) in &table {
        println!(
            "| {rate}/s | {:.3} ms | {:.3} ms | {:.3} ms | {:.3} ms | {:+.3} ms | {:+.3} ms | {} |",
            ms(direct.percentile(500)),
            ms(direct.percentile(990)),
            ms(via.percentile(500)),
            ms(via.percentile(990)),
            ms(via.percentile(500)) - ms(direct.percentile(500)),
            ms(via.percentile(990)) - ms(direct.percentile(990)),
            via.errors + direct.errors,
        );
    }

    // The highest rate held: no errors, at least 95 % of the offered rate, p99 under 50 ms.
    let mut held = 0;
    for rate in [3_000u64, 4_000, 5_000, 6_000, 8_000] {
        let via = clients.block_on(load(&client, &gateway_url, AGENT_KEY, rate, secs.min(5)));
        let ok = via.errors == 0
            && via.achieved() >= 0.95 * rate as f64
            && via.percentile(990) < Duration::from_millis(50);
        println!(
            "{}{}",
            row(&format!("{rate}/s through the gateway"), &via),
            if ok { "" } else { "  <- not held" }
        );
        if !ok {
            break;
        }
        held = rate;
    }
    println!(
        "highest rate held through the gateway (no errors, >=95% achieved, p99 < 50 ms): {}",
        if held == 0 {
            "2000/s or less".to_owned()
        } else {
            format!("{held}/s")
        }
    );

    if std::env::var_os("AO_BENCH_POSTGRES").is_some() {
        postgres_comparison(&servers, &clients, &client, &mock, &gateway_url, secs);
    }

    if let Some(litellm) = std::env::var_os("AO_BENCH_LITELLM") {
        litellm_comparison(&clients, &client, &litellm, &mock, &gateway_url, secs);
    } else {
        println!(
            "\nLiteLLM: not run (set AO_BENCH_LITELLM to a litellm executable; `cargo xtask bench gateway --litellm` installs one)"
        );
    }
}

/// Starts a gateway over `config` on the `servers` runtime; returns its address.
fn start_gateway(servers: &tokio::runtime::Runtime, config: &Config) -> std::net::SocketAddr {
    servers.block_on(async {
        let (orchestrator, store) = Orchestrator::from_config(config).unwrap();
        let keys = KeyRing::load(config, &store).unwrap();
        let gateway = Gateway::new(orchestrator, store, keys, GatewayOptions::default());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { gateway.serve(listener, std::future::pending()).await });
        addr
    })
}

/// `AO_BENCH_POSTGRES`: `AO_BENCH_GATEWAYS` gateways (default 2) on one PostgreSQL database (a
/// scratch schema on `AO_TEST_DATABASE_URL`), the load spread over them in turn, side by side
/// with the one gateway on SQLite and the mock called directly, in the same run.
fn postgres_comparison(
    servers: &tokio::runtime::Runtime,
    clients: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    mock: &SimServer,
    sqlite_url: &str,
    secs: u64,
) {
    let n: usize = std::env::var("AO_BENCH_GATEWAYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2)
        .max(1);
    let schema = ao_store::pg::ScratchSchema::create(&ao_store::pg::test_server_url())
        .expect("PostgreSQL (AO_TEST_DATABASE_URL, default the local server) for --postgres");
    let dir = tempfile::tempdir().unwrap();
    let database = format!(
        "[database]\nurl = \"{}\"\nmax_connections = 16",
        schema.url()
    );
    let urls: Vec<String> = (0..n)
        .map(|_| {
            let config = config(dir.path(), &mock.url(), &database);
            format!(
                "http://{}/v1/chat/completions",
                start_gateway(servers, &config)
            )
        })
        .collect();
    let mock_url = format!("{}/chat/completions", mock.url());
    println!(
        "\n== {n} gateways on one PostgreSQL database (shared budgets, one audit chain), the load spread over them, beside one gateway on SQLite =="
    );
    clients.block_on(load_spread(client, &urls, AGENT_KEY, 200, 2));
    println!(
        "\n| rate (total) | direct p50 / p99 | SQLite gateway p50 / p99 | {n} PostgreSQL gateways p50 / p99 | added p99: SQLite | added p99: PostgreSQL | PostgreSQL / SQLite (added p99) | errors |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for rate in [500u64, 2_000] {
        let direct = clients.block_on(load(client, &mock_url, "x", rate, secs));
        let sqlite = clients.block_on(load(client, sqlite_url, AGENT_KEY, rate, secs));
        let pg = clients.block_on(load_spread(client, &urls, AGENT_KEY, rate, secs));
        let added = |s: &Stats| ms(s.percentile(990)) - ms(direct.percentile(990));
        println!(
            "| {rate}/s | {:.3} / {:.3} ms | {:.3} / {:.3} ms | {:.3} / {:.3} ms | {:+.3} ms | {:+.3} ms | {:.2} | {} |",
            ms(direct.percentile(500)),
            ms(direct.percentile(990)),
            ms(sqlite.percentile(500)),
            ms(sqlite.percentile(990)),
            ms(pg.percentile(500)),
            ms(pg.percentile(990)),
            added(&sqlite),
            added(&pg),
            added(&pg) / added(&sqlite).max(0.001),
            direct.errors + sqlite.errors + pg.errors,
        );
    }
    let mut held = 0;
    for rate in [3_000u64, 4_000, 5_000, 6_000] {
        let pg = clients.block_on(load_spread(client, &urls, AGENT_KEY, rate, secs.min(5)));
        let ok = pg.errors == 0
            && pg.achieved() >= 0.95 * rate as f64
            && pg.percentile(990) < Duration::from_millis(50);
        println!(
            "{}{}",
            row(&format!("{rate}/s over {n} PostgreSQL gateways"), &pg),
            if ok { "" } else { "  <- not held" }
        );
        if !ok {
            break;
        }
        held = rate;
    }
    println!(
        "highest rate held over {n} PostgreSQL gateways (no errors, >=95% achieved, p99 < 50 ms): {}",
        if held == 0 {
            "2000/s or less".to_owned()
        } else {
            format!("{held}/s")
        }
    );
}

/// Runs the LiteLLM proxy (no database: its budget mode needs binaries from outside the package
/// registries) against the same mock, at rates it can hold, and compares added latencies.
fn litellm_comparison(
    clients: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    litellm: &std::ffi::OsStr,
    mock: &SimServer,
    gateway_url: &str,
    secs: u64,
) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "model_list:\n  - model_name: auto\n    litellm_params:\n      model: openai/mock-gpt\n      api_base: {}\n      api_key: sk-dummy\ngeneral_settings:\n  master_key: sk-bench-master-key\n",
            mock.url()
        ),
    )
    .unwrap();
    let port = 14_000 + (std::process::id() % 1_000) as u16;
    let mut child = match std::process::Command::new(litellm)
        .args([
            "--config",
            config.to_str().unwrap(),
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--num_workers",
            "1",
        ])
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            println!(
                "\nLiteLLM: could not start {}: {e}",
                litellm.to_string_lossy()
            );
            return;
        }
    };
    let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
    let ready = clients.block_on(async {
        for _ in 0..120 {
            if client
                .get(format!("http://127.0.0.1:{port}/health/liveliness"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        false
    });
    if !ready {
        println!("\nLiteLLM: did not become ready within 60 s");
        let _ = child.kill();
        return;
    }
    let mock_url = format!("{}/chat/completions", mock.url());
    println!("\n== LiteLLM proxy (1 worker, no database) against the same mock ==");
    clients.block_on(load(client, &url, "sk-bench-master-key", 20, 2));
    for rate in [50u64, 100] {
        let direct = clients.block_on(load(client, &mock_url, "x", rate, secs));
        let ours = clients.block_on(load(client, gateway_url, AGENT_KEY, rate, secs));
        let lite = clients.block_on(load(client, &url, "sk-bench-master-key", rate, secs));
        println!("{}", row(&format!("{rate}/s direct to the mock"), &direct));
        println!("{}", row(&format!("{rate}/s through the gateway"), &ours));
        println!("{}", row(&format!("{rate}/s through LiteLLM"), &lite));
        let added = |s: &Stats, p| ms(s.percentile(p)) - ms(direct.percentile(p));
        let ratio = |p| {
            let ours = added(&ours, p);
            if ours < 0.01 {
                "the gateway's own addition is within the noise (under 0.01 ms)".to_owned()
            } else {
                format!(
                    "LiteLLM adds {:.0}x what the gateway adds",
                    added(&lite, p) / ours
                )
            }
        };
        println!(
            "added at {rate}/s: gateway p50 {:+.3} ms / p99 {:+.3} ms; LiteLLM p50 {:+.3} ms / p99 {:+.3} ms; p50: {}; p99: {}",
            added(&ours, 500),
            added(&ours, 990),
            added(&lite, 500),
            added(&lite, 990),
            ratio(500),
            ratio(990),
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}
