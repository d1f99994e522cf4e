//! The soak test behind `cargo xtask soak`: a real `ao serve` process, with the SQLite ledger on,
//! under mixed traffic at a fixed rate against the simulator for minutes, reporting its memory,
//! its open file descriptors, latency per minute and every 5xx.
//!
//! The traffic, per 100 calls: 60 plain completions, 15 streamed, 8 over budget (429), 5 needing
//! approval (403, then 429 once the agent has its maximum of pending requests), 6 bad input
//! (400), 6 clients that hang up mid-call.
//!
//! `cargo run --release -p ao-cli --example soak -- --ao target/release/ao --seconds 600 --rate 1000`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss,
    missing_docs,
    reason = "a load generator run by hand and by xtask"
)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ao_sim::{Behavior, SimServer};
use futures_util::StreamExt;
use serde_json::json;

const PLAIN_KEY: &str = "ao-soak-plain";
const POOR_KEY: &str = "ao-soak-poor";
const SUPERVISED_KEY: &str = "ao-soak-supervised";

#[derive(Debug)]
struct Args {
    ao: String,
    seconds: u64,
    rate: u64,
    /// Seconds per reported window (a minute by default).
    window: u64,
    /// Check only what a short run can show: no 5xx, no descriptor leak (not memory growth,
    /// which a short run cannot tell from warming up).
    short: bool,
}

fn args() -> Result<Args, String> {
    let mut parsed = Args {
        ao: "target/release/ao".into(),
        seconds: 60,
        rate: 1_000,
        window: 60,
        short: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--short" {
            parsed.short = true;
            continue;
        }
        let value = args.next().ok_or(format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--ao" => parsed.ao = value,
            "--seconds" => parsed.seconds = value.parse().map_err(|_| "--seconds: a number")?,
            "--rate" => parsed.rate = value.parse().map_err(|_| "--rate: a number")?,
            "--window" => parsed.window = value.parse().map_err(|_| "--window: a number")?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(parsed)
}

/// What one minute saw.
#[derive(Debug, Default)]
struct Minute {
    latencies: Vec<Duration>,
    statuses: std::collections::BTreeMap<u16, u64>,
    server_errors: Vec<String>,
}

fn main() -> ExitCode {
    let args = match args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    match runtime.block_on(soak(&args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::FAILURE
        }
    }
}

fn config(dir: &std::path::Path, sim: &str) -> String {
    let hash = agent_orchestrator::gateway::hash_key;
    format!(
        r#"
data_dir = "{dir}"
default_backend = "openai"

[[backends]]
provider = "openai"
model = "gpt-4o"
endpoint = "{sim}"
cost_per_1k_input = 5
cost_per_1k_output = 15
max_retries = 0
timeout_secs = 10

[approvals]
expiry_secs = 60

[agents.plain]
autonomy = "fully-autonomous"
api_key_sha256 = "{plain}"
budget = {{ daily_limit_sats = 18446744073709551615, session_limit_sats = 18446744073709551615 }}

[agents.poor]
autonomy = "fully-autonomous"
api_key_sha256 = "{poor}"
budget = {{ daily_limit_sats = 0, session_limit_sats = 0 }}

[agents.supervised]
autonomy = "supervised"
operator = "{operator}"
api_key_sha256 = "{supervised}"
"#,
        dir = dir.display(),
        plain = hash(PLAIN_KEY),
        poor = hash(POOR_KEY),
        supervised = hash(SUPERVISED_KEY),
        operator = nostr::Keys::generate().public_key().to_hex(),
    )
}

fn start(ao: &str, config: &std::path::Path) -> Result<(Child, String), String> {
    let mut child = Command::new(ao)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {ao}: {e}"))?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let addr = loop {
        let line = lines
            .next()
            .ok_or("the gateway exited before listening")?
            .map_err(|e| e.to_string())?;
        if let Some(rest) = line.strip_prefix("agent-orchestrator gateway listening on http://") {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Ok((child, addr))
}

/// The gateway's resident memory in kB and its open file descriptors.
fn resources(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count);
    (rss, fds)
}

async fn soak(args: &Args) -> Result<bool, String> {
    let sim = SimServer::start(Behavior::Reply {
        content: "A soak reply of a few words.".into(),
        usage: Some((20, 8)),
    })
    .await
    .map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config_path = dir.path().join("ao.toml");
    std::fs::write(&config_path, config(dir.path(), &sim.url())).map_err(|e| e.to_string())?;
    let (mut gateway, addr) = start(&args.ao, &config_path)?;
    let pid = gateway.id();
    let url = format!("http://{addr}/v1/chat/completions");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .map_err(|e| e.to_string())?;
    println!(
        "== soak: {} s at {}/s through a real `ao serve` (SQLite ledger on) ==",
        args.seconds, args.rate
    );
    println!(
        "| {} s window | rss MB | fds | p50 ms | p99 ms | requests | 2xx | 4xx | 5xx |",
        args.window
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let started = Instant::now();
    let total = Duration::from_secs(args.seconds);
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let mut minutes: Vec<(u64, usize, Minute)> = Vec::new();
    let mut n: u64 = 0;
    let mut window_start = Instant::now();
    let mut current = Arc::new(Mutex::new(Minute::default()));
    let mut next_due = Instant::now();
    while started.elapsed() < total {
        if window_start.elapsed() >= Duration::from_secs(args.window.max(1))
            || started.elapsed() + interval >= total
        {
            // Let the minute's calls finish before reading it.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let done = std::mem::take(&mut *current.lock().unwrap());
            let (rss, fds) = resources(pid);
            report(minutes.len() + 1, rss, fds, &done);
            minutes.push((rss, fds, done));
            current = Arc::new(Mutex::new(Minute::default()));
            window_start = Instant::now();
            if started.elapsed() + interval >= total {
                break;
            }
        }
        tokio::time::sleep_until(next_due.into()).await;
        next_due += interval;
        let call = call(client.clone(), url.clone(), n, Arc::clone(&current));
        tokio::spawn(call);
        n += 1;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = gateway.wait();
    Ok(verdict(&minutes, args.short))
}

fn report(minute: usize, rss: u64, fds: usize, m: &Minute) {
    let mut latencies = m.latencies.clone();
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1_000.0)
    };
    let count = |range: std::ops::Range<u16>| -> u64 {
        m.statuses
            .iter()
            .filter(|(s, _)| range.contains(s))
            .map(|(_, n)| n)
            .sum()
    };
    println!(
        "| {minute} | {:.1} | {fds} | {:.2} | {:.2} | {} | {} | {} | {} |",
        rss as f64 / 1_024.0,
        at(0.5),
        at(0.99),
        m.statuses.values().sum::<u64>(),
        count(200..300),
        count(400..500),
        count(500..600),
    );
    for error in &m.server_errors {
        println!("  5xx: {error}");
    }
}

/// Whether the run met its goals: no 5xx, memory within 10 % of the first window's (unless
/// `short`), and no descriptor leak: the last window holds at most 64 more than the first (open
/// connections come and go with the load; a leak grows without end).
fn verdict(minutes: &[(u64, usize, Minute)], short: bool) -> bool {
    let errors: usize = minutes.iter().map(|(_, _, m)| m.server_errors.len()).sum();
    let Some((rss0, fds0, _)) = minutes.first() else {
        return false;
    };
    let rss_max = minutes.iter().map(|(r, _, _)| *r).max().unwrap_or(0);
    let fds_max = minutes.iter().map(|(_, f, _)| *f).max().unwrap_or(0);
    let fds_last = minutes.last().map_or(0, |(_, f, _)| *f);
    let growth = (rss_max as f64 - *rss0 as f64) / (*rss0).max(1) as f64 * 100.0;
    println!(
        "soak: {errors} server errors; RSS {:.1} MB after the first window, at most {:.1} MB ({growth:+.1} %); fds {fds0} after the first window, at most {fds_max}, {fds_last} at the end",
        *rss0 as f64 / 1_024.0,
        rss_max as f64 / 1_024.0
    );
    errors == 0 && (short || growth < 10.0) && fds_last <= fds0 + 64
}

/// One call of the mix, chosen by `n`.
async fn call(client: reqwest::Client, url: String, n: u64, minute: Arc<Mutex<Minute>>) {
    let plain = json!({"model": "auto", "max_tokens": 16, "messages": [{"role": "user", "content": format!("soak {n}")}]});
    let started = Instant::now();
    let (key, body, stream, hang_up) = match n % 100 {
        0..60 => (PLAIN_KEY, plain.to_string(), false, false),
        60..75 => (PLAIN_KEY, json!({"model": "auto", "stream": true, "max_tokens": 16, "messages": [{"role": "user", "content": "stream"}]}).to_string(), true, false),
        75..83 => (POOR_KEY, plain.to_string(), false, false),
        83..88 => (SUPERVISED_KEY, plain.to_string(), false, false),
        88..94 => (PLAIN_KEY, "{\"messages\": [".to_owned(), false, false),
        _ => (PLAIN_KEY, json!({"model": "auto", "stream": true, "max_tokens": 16, "messages": [{"role": "user", "content": "hang up"}]}).to_string(), true, true),
    };
    let response = client
        .post(&url)
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body)
        .timeout(Duration::from_secs(30))
        .send()
        .await;
    let outcome = match response {
        Err(e) => Err(e.to_string()),
        Ok(response) => {
            let status = response.status().as_u16();
            let mut body = response.bytes_stream();
            if hang_up {
                let _ = body.next().await;
                drop(body);
            } else {
                while let Some(chunk) = body.next().await {
                    if chunk.is_err() {
                        break;
                    }
                }
            }
            let _ = stream;
            Ok(status)
        }
    };
    let elapsed = started.elapsed();
    let Ok(mut m) = minute.lock() else {
        return;
    };
    match outcome {
        Ok(status) => {
            *m.statuses.entry(status).or_default() += 1;
            if status >= 500 {
                m.server_errors.push(format!("call {n}: {status}"));
            } else if status < 300 {
                m.latencies.push(elapsed);
            }
        }
        Err(error) => m.server_errors.push(format!("call {n}: {error}")),
    }
}
