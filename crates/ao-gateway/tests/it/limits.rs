//! Limits that hold against impolite traffic: per-agent rate limits under concurrency and
//! streams that would never end. (Slow headers have a test binary of their own, `slow_clients`,
//! so that no other test competes with its latency measure.)

use std::time::{Duration, Instant};

use ao_gateway::{GatewayOptions, hash_key};
use ao_routing::http::{ChatMessage, ChatRequest, estimate_input};
use ao_sim::{Behavior, SimServer};
use futures_util::StreamExt;
use nostr::Keys;
use serde_json::{Value, json};

use crate::{ADMIN_TOKEN, Running, serve_config};

const KEY: &str = "ao-test-limited-key";

/// A gateway with one backend at `backend` and one agent `limited` with `rate_limits` (TOML
/// inline table), under `options`.
async fn gateway(backend: &SimServer, rate_limits: &str, options: GatewayOptions) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
data_dir = "{dir}"
default_backend = "openai"

[[backends]]
provider = "openai"
model = "gpt-4o"
endpoint = "{url}"
cost_per_1k_input = 5
cost_per_1k_output = 15
max_retries = 0

[agents.limited]
autonomy = "fully-autonomous"
api_key_sha256 = "{hash}"
budget = {{ daily_limit_sats = 1000000, session_limit_sats = 1000000 }}
rate_limits = {rate_limits}
"#,
        dir = dir.path().display(),
        url = backend.url(),
        hash = hash_key(KEY),
    );
    serve_config(
        &text,
        dir,
        Keys::generate(),
        GatewayOptions {
            admin_token_sha256: Some(hash_key(ADMIN_TOKEN)),
            ..options
        },
    )
    .await
}

fn body(max_tokens: u64) -> Value {
    json!({"model": "auto", "max_tokens": max_tokens, "messages": [{"role": "user", "content": "hello there"}]})
}

async fn burst(gw: &Running, n: usize, body: &Value) -> Vec<(u16, Value, Option<String>)> {
    let client = reqwest::Client::new();
    let calls = (0..n).map(|_| {
        let client = client.clone();
        let url = gw.url("/v1/chat/completions");
        async move {
            let response = client
                .post(url)
                .bearer_auth(KEY)
                .json(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let retry = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, response.json().await.unwrap_or(Value::Null), retry)
        }
    });
    futures_util::future::join_all(calls).await
}

fn refusals<'a>(
    results: &'a [(u16, Value, Option<String>)],
    limit: &str,
) -> Vec<&'a (u16, Value, Option<String>)> {
    results
        .iter()
        .filter(|r| r.0 == 429 && r.1["error"]["limit"] == limit)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_minute_admit_exactly_the_limit_under_concurrency() {
    let backend = SimServer::start(Behavior::reply()).await.unwrap();
    let gw = gateway(
        &backend,
        "{ requests_per_minute = 5 }",
        GatewayOptions::default(),
    )
    .await;
    let results = burst(&gw, 30, &body(10)).await;
    assert_eq!(results.iter().filter(|r| r.0 == 200).count(), 5);
    let refused = refusals(&results, "requests_per_minute");
    assert_eq!(refused.len(), 25);
    assert_eq!(refused[0].1["error"]["code"], "rate_limited");
    assert!(refused[0].2.as_deref().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(backend.requests(), 5);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_per_minute_count_the_reserved_estimates() {
    let backend = SimServer::start(Behavior::reply()).await.unwrap();
    let gw = gateway(
        &backend,
        "{ tokens_per_minute = 10000 }",
        GatewayOptions::default(),
    )
    .await;
    let request = body(1_000);
    let parsed = ChatRequest {
        max_tokens: Some(1_000),
        ..ChatRequest::new(vec![ChatMessage::new("user", "hello there")])
    };
    let mut with_model = parsed.clone();
    with_model.model = "auto".into();
    let per_call = estimate_input(&with_model).unwrap().tokens(0) + 1_000;
    let results = burst(&gw, 20, &request).await;
    let admitted = results.iter().filter(|r| r.0 == 200).count() as u64;
    assert_eq!(admitted, 10_000 / per_call, "{per_call} tokens a call");
    assert_eq!(
        refusals(&results, "tokens_per_minute").len() as u64,
        20 - admitted
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_are_capped() {
    let backend = SimServer::start(Behavior::Hang(Duration::from_millis(500)))
        .await
        .unwrap();
    let gw = gateway(&backend, "{ concurrent = 2 }", GatewayOptions::default()).await;
    let results = burst(&gw, 12, &body(10)).await;
    assert_eq!(results.iter().filter(|r| r.0 == 200).count(), 2);
    assert_eq!(refusals(&results, "concurrent").len(), 10);
    // Once they are done, there is room again.
    assert_eq!(burst(&gw, 1, &body(10)).await[0].0, 200);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_would_never_end_is_ended_at_the_maximum() {
    let backend = SimServer::start(Behavior::Trickle {
        every: Duration::from_millis(300),
    })
    .await
    .unwrap();
    let gw = gateway(
        &backend,
        "{}",
        GatewayOptions {
            max_stream: Duration::from_secs(1),
            ..GatewayOptions::default()
        },
    )
    .await;
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&json!({"model": "auto", "stream": true, "max_tokens": 100, "messages": [{"role": "user", "content": "go on forever"}]}))
        .send()
        .await
        .unwrap();
    let mut text = Vec::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        text.extend_from_slice(&chunk.unwrap());
    }
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("stream_too_long"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let (gateway, _) = gw.stop().await;
    let tracker = gateway.orchestrator().tracker();
    assert_eq!(tracker.outstanding_reservations("limited").unwrap(), 0);
    assert!(
        tracker.daily_total("limited") > 0,
        "the ended stream is charged"
    );
}
