use std::time::Duration;

use ao_approvals::{Verdict, build_decision_event};
use ao_audit::AuditLog;
use ao_budget::Ledger;
use ao_sim::{Behavior, SimServer};
use nostr::JsonUtil;
use serde_json::{Value, json};

use crate::{ADMIN_TOKEN, ORACLE_KEY, SISYPHUS_KEY, start};

fn chat(max_tokens: u64) -> Value {
    json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": max_tokens})
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    body: &Value,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut request = client.post(url).json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body, headers)
}

async fn sims() -> (SimServer, SimServer) {
    let reply = |content: &str| Behavior::Reply {
        content: content.into(),
        usage: Some((10, 20)),
    };
    (
        SimServer::start(reply("from openai")).await.unwrap(),
        SimServer::start(reply("from codex")).await.unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_decide_the_agent_and_bad_keys_spend_nothing() {
    let (openai, codex) = sims().await;
    let gw = start(&openai, &codex, 1 << 20).await;
    let client = reqwest::Client::new();
    let url = gw.url("/v1/chat/completions");

    let (status, body, headers) = post(&client, &url, None, &chat(10)).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_api_key");
    assert_eq!(headers["www-authenticate"], "Bearer");
    assert_eq!(
        post(&client, &url, Some("ao-wrong"), &chat(10)).await.0,
        401
    );

    let (status, body, headers) = post(&client, &url, Some(ORACLE_KEY), &chat(10)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "from codex");
    assert_eq!(headers["x-ao-backend"], "codex");
    assert_eq!(codex.requests(), 1);

    // A key made and revoked through the admin API.
    let created: Value = client
        .post(gw.url("/admin/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"agent": "oracle"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    assert_eq!(post(&client, &url, Some(&key), &chat(10)).await.0, 200);
    let revoked = client
        .delete(gw.url(&format!("/admin/keys/{}", created["id"].as_str().unwrap())))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status().as_u16(), 200);
    assert_eq!(post(&client, &url, Some(&key), &chat(10)).await.0, 401);
    assert_eq!(codex.requests(), 2, "refused keys never reach a backend");

    // The admin API wants the admin token.
    let denied = client
        .get(gw.url("/admin/agents"))
        .bearer_auth(ORACLE_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status().as_u16(), 401);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_the_budget_is_admitted_among_concurrent_requests() {
    let (openai, codex) = sims().await;
    // Every answer takes 300 ms, so all requests are in flight together.
    codex.set_default(Behavior::Hang(Duration::from_millis(300)));
    let gw = start(&openai, &codex, 1 << 20).await;
    let client = reqwest::Client::new();
    let url = gw.url("/v1/chat/completions");
    // 1,000 output tokens at 15 sats per 1,000, plus a few input tokens: 16 sats each, so five
    // fit in the 80-sat daily budget.
    let request = chat(1_000);
    let calls = (0..20).map(|_| post(&client, &url, Some(ORACLE_KEY), &request));
    let results = futures_util::future::join_all(calls).await;
    let ok = results.iter().filter(|r| r.0 == 200).count();
    let over: Vec<_> = results.iter().filter(|r| r.0 == 429).collect();
    assert_eq!(ok, 5);
    assert_eq!(over.len(), 15);
    let (_, body, headers) = over[0];
    assert_eq!(body["error"]["type"], "budget_exceeded");
    assert_eq!(body["error"]["code"], "daily_budget_exceeded");
    assert_eq!(body["error"]["limit_sats"], 80);
    assert!(body["error"]["resets_at"].as_u64().unwrap() % 86_400 == 0);
    assert!(headers.contains_key("retry-after"));
    assert_eq!(codex.requests(), 5);
    let (_, store) = gw.stop().await;
    assert_eq!(
        store.load_agent_range("oracle", 0, u64::MAX).unwrap().len(),
        5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervised_agent_gets_403_then_goes_through_once_approved() {
    let (openai, codex) = sims().await;
    let gw = start(&openai, &codex, 1 << 20).await;
    let client = reqwest::Client::new();
    let url = gw.url("/v1/chat/completions");
    let (status, body, _) = post(&client, &url, Some(SISYPHUS_KEY), &chat(100)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["type"], "approval_required");
    let id = body["error"]["approval_id"].as_str().unwrap().to_owned();
    assert_eq!(codex.requests(), 0);

    let pending: Value = client
        .get(gw.url("/admin/approvals"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pending["pending"][0]["request_id"], id.as_str());
    // An unsigned approval through the API cannot pass the operator's key.
    let unsigned = client
        .post(gw.url(&format!("/admin/approvals/{id}/approve")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 403);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let event = build_decision_event(&gw.operator, &id, Verdict::Approve, Some("ok"), now).unwrap();
    let signed = client
        .post(gw.url("/admin/approvals/signed"))
        .bearer_auth(ADMIN_TOKEN)
        .body(event.as_json())
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status().as_u16(), 200);

    let response = client
        .post(&url)
        .bearer_auth(SISYPHUS_KEY)
        .header("x-ao-approval", &id)
        .json(&chat(100))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(codex.requests(), 1);
    let again = client
        .post(&url)
        .bearer_auth(SISYPHUS_KEY)
        .header("x-ao-approval", &id)
        .json(&chat(100))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 403, "an approval allows one call");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_passes_chunks_and_settles_the_final_usage() {
    let (openai, codex) = sims().await;
    let gw = start(&openai, &codex, 1 << 20).await;
    let client = reqwest::Client::new();
    let mut body = chat(100);
    body["stream"] = json!(true);
    let response = client
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(ORACLE_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.unwrap();
    let events: Vec<&str> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"));
    let content: String = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|v| {
            v.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(content, "from codex");
    let (gateway, store) = gw.stop().await;
    // Codex: 10 × 3 + 20 × 15 = 330 msats: 1 sat.
    let rows = store.load_agent_range("oracle", 0, u64::MAX).unwrap();
    assert_eq!(
        (
            rows[0].input_tokens,
            rows[0].output_tokens,
            rows[0].cost_sats
        ),
        (10, 20, 1)
    );
    assert_eq!(
        gateway
            .orchestrator()
            .tracker()
            .outstanding_reservations("oracle")
            .unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_backend_falls_back_and_metrics_count_it() {
    let (openai, codex) = sims().await;
    codex.set_default(Behavior::Status {
        status: 500,
        retry_after: None,
    });
    let gw = start(&openai, &codex, 1 << 20).await;
    let client = reqwest::Client::new();
    let (status, body, headers) = post(
        &client,
        &gw.url("/v1/chat/completions"),
        Some(ORACLE_KEY),
        &chat(10),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-ao-backend"], "openai");
    assert_eq!(body["choices"][0]["message"]["content"], "from openai");
    // The failed try's reservation is released in the background, once the charge is durable.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let metrics = loop {
        let metrics = client
            .get(gw.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains("ao_reservations_outstanding{agent=\"oracle\"} 0")
            || std::time::Instant::now() > deadline
        {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        metrics.contains("ao_requests_total{agent=\"oracle\",outcome=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ao_backend_errors_total{provider=\"codex\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ao_reservations_outstanding{agent=\"oracle\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ao_request_duration_seconds_count 1"),
        "{metrics}"
    );
    let health = client.get(gw.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_4xx_and_costs_nothing() {
    let (openai, codex) = sims().await;
    let gw = start(&openai, &codex, 2_000).await;
    let client = reqwest::Client::new();
    let url = gw.url("/v1/chat/completions");
    let huge =
        json!({"model": "auto", "messages": [{"role": "user", "content": "x".repeat(5_000)}]});
    let (status, body, _) = post(&client, &url, Some(ORACLE_KEY), &huge).await;
    assert_eq!(status, 413, "{body}");
    let malformed = client
        .post(&url)
        .bearer_auth(ORACLE_KEY)
        .body("{\"messages\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status().as_u16(), 400);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_json");
    let mut unknown = chat(10);
    unknown["model"] = json!("gpt-99");
    let (status, body, _) = post(&client, &url, Some(ORACLE_KEY), &unknown).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "model_not_found");
    let mut known = chat(10);
    known["model"] = json!("gpt-4");
    assert_eq!(post(&client, &url, Some(ORACLE_KEY), &known).await.0, 200);
    assert_eq!(codex.requests(), 1);

    // A backend that hangs times out: 504. The request reached it, so every attempt is charged
    // its estimate (the provider may have billed it), and nothing stays reserved.
    codex.set_default(Behavior::Hang(Duration::from_secs(10)));
    openai.set_default(Behavior::Hang(Duration::from_secs(10)));
    let (status, body, _) = post(&client, &url, Some(ORACLE_KEY), &chat(10)).await;
    assert_eq!(status, 504, "{body}");
    let (gateway, _) = gw.stop().await;
    let tracker = gateway.orchestrator().tracker();
    assert_eq!(tracker.outstanding_reservations("oracle").unwrap(), 0);
    let entries = gateway
        .orchestrator()
        .audit()
        .entries(1, usize::MAX)
        .unwrap();
    let failed = entries.last().unwrap().detail_json().unwrap();
    assert_eq!(failed["outcome"], "failed");
    let attempts = failed["billed_failed_attempts"].as_u64().unwrap();
    assert!(attempts >= 1, "{failed}");
    assert_eq!(
        failed["cost_sats"].as_u64().unwrap(),
        attempts * failed["estimate_sats"].as_u64().unwrap()
    );
    assert_eq!(
        tracker.daily_total("oracle"),
        1 + failed["cost_sats"].as_u64().unwrap(),
        "the answered call, and every attempt that timed out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_and_settles_requests_in_flight() {
    let (openai, codex) = sims().await;
    codex.set_default(Behavior::Hang(Duration::from_millis(400)));
    let gw = start(&openai, &codex, 1 << 20).await;
    let client = reqwest::Client::new();
    let url = gw.url("/v1/chat/completions");
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move { post(&client, &url, Some(ORACLE_KEY), &chat(10)).await.0 })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(codex.requests(), 4, "all four are in flight");
    let (gateway, store) = gw.stop().await;
    for call in calls {
        assert_eq!(call.await.unwrap(), 200);
    }
    assert_eq!(gateway.orchestrator().pending_writes(), 0);
    assert_eq!(
        store.load_agent_range("oracle", 0, u64::MAX).unwrap().len(),
        4
    );
    assert_eq!(
        gateway
            .orchestrator()
            .tracker()
            .outstanding_reservations("oracle")
            .unwrap(),
        0
    );
    assert!(store.verify().unwrap().is_ok());
    assert_eq!(
        store
            .entries(1, usize::MAX)
            .unwrap()
            .iter()
            .filter(|e| e.kind == "completion")
            .count(),
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_gets_408_and_costs_nothing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (openai, codex) = sims().await;
    let gw = crate::start_with(&openai, &codex, 1 << 20, Duration::from_millis(300)).await;
    let mut socket = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    // Headers promise 500 bytes of body; only a few arrive.
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ORACLE_KEY}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{{\"model\""
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    assert_eq!(codex.requests() + openai.requests(), 0);
    let (gateway, _) = gw.stop().await;
    assert_eq!(gateway.orchestrator().tracker().daily_total("oracle"), 0);
}
