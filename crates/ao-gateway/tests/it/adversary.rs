//! The agent as the adversary, against a provider that bills the way real ones do (`ao-sim` in
//! billing mode: every request that reaches it is billed on arrival, at the most any tokenizer
//! could count, with its whole output, whatever happens next). For every shape and failure:
//! the gateway charged at least what the provider billed, and the provider never billed past the
//! budget or the approval amount.

use std::time::Duration;

use ao_gateway::{GatewayOptions, hash_key};
use ao_sim::{Behavior, SimServer};
use futures_util::StreamExt;
use nostr::Keys;
use serde_json::{Value, json};

use crate::{ADMIN_TOKEN, Running, serve_config};

const SLY_KEY: &str = "ao-test-sly-key";
const BURST_KEY: &str = "ao-test-burst-key";
/// OpenAI-like prices: 5 sats per 1,000 input tokens, 15 per 1,000 output tokens.
const PRICES: (u64, u64) = (5, 15);
/// `sly` needs approval above this many sats.
const APPROVAL_ABOVE: u64 = 50;
/// `burst`'s session budget.
const SESSION_BUDGET: u64 = 300;

/// A gateway whose one backend is `provider`, billing like a real one, with `retries` retries
/// and a one-second timeout. `sly` is semi-autonomous under an operator; `burst` is fully
/// autonomous with a small session budget.
async fn gateway(provider: &SimServer, retries: u32) -> Running {
    provider.bill_like_a_provider();
    serve(provider, retries).await
}

/// [`gateway`] over a provider that reports whatever usage it was scripted with.
async fn serve(provider: &SimServer, retries: u32) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let operator = Keys::generate();
    let text = format!(
        r#"
data_dir = "{dir}"
default_backend = "openai"

[[backends]]
provider = "openai"
model = "gpt-4o"
endpoint = "{url}"
cost_per_1k_input = {input}
cost_per_1k_output = {output}
timeout_secs = 1
max_retries = {retries}
image_tokens = 1445

[agents.sly]
autonomy = "semi-autonomous"
approval_above_sats = {approval}
operator = "{operator}"
api_key_sha256 = "{sly}"
budget = {{ daily_limit_sats = 100000, session_limit_sats = 100000 }}

[agents.burst]
autonomy = "fully-autonomous"
api_key_sha256 = "{burst}"
budget = {{ daily_limit_sats = 100000, session_limit_sats = {session} }}
"#,
        dir = dir.path().display(),
        url = provider.url(),
        input = PRICES.0,
        output = PRICES.1,
        approval = APPROVAL_ABOVE,
        operator = operator.public_key().to_hex(),
        sly = hash_key(SLY_KEY),
        burst = hash_key(BURST_KEY),
        session = SESSION_BUDGET,
    );
    serve_config(
        &text,
        dir,
        operator,
        GatewayOptions {
            admin_token_sha256: Some(hash_key(ADMIN_TOKEN)),
            metrics_token_sha256: None,
            max_body_bytes: 4 << 20,
            client_timeout: Duration::from_secs(5),
            ..GatewayOptions::default()
        },
    )
    .await
}

async fn post(gw: &Running, key: &str, body: &Value) -> (u16, Value, reqwest::header::HeaderMap) {
    let response = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        headers,
    )
}

fn billed(provider: &SimServer) -> u64 {
    provider.billed_sats(PRICES.0, PRICES.1)
}

/// What the gateway charged `agent`, once every background write is done.
async fn charged(gw: Running, agent: &str) -> u64 {
    let (gateway, _) = gw.stop().await;
    gateway.orchestrator().tracker().daily_total(agent)
}

/// Requests whose bulk is outside `content`, where an estimate of the text alone misses it.
fn shaped(bulk: usize) -> Vec<(&'static str, Value)> {
    let words = "the agent hides its prompt here ".repeat(bulk / 32 + 1);
    let cjk = "予算を守るエージェント".repeat(bulk / 33 + 1);
    let user = |content: Value| json!({"role": "user", "content": content});
    vec![
        ("tool-call arguments", json!({"messages": [
            user(json!("go")),
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "search", "arguments": words}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        ]})),
        ("a tool result", json!({"messages": [
            user(json!("go")),
            {"role": "tool", "tool_call_id": "c1", "content": words},
        ]})),
        ("tool definitions", json!({"messages": [user(json!("go"))], "tools": [
            {"type": "function", "function": {"name": "f", "description": words, "parameters": {"type": "object"}}},
        ]})),
        ("a response_format schema", json!({"messages": [user(json!("go"))], "response_format":
            {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object", "description": words}}}})),
        ("images", json!({"messages": [user(json!(
            (0..bulk / 200 + 1).map(|_| json!({"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "high"}})).collect::<Vec<_>>()
        ))]})),
        ("a name", json!({"messages": [{"role": "user", "name": words, "content": "go"}]})),
        ("CJK text", json!({"messages": [user(json!(cjk))]})),
        ("text parts", json!({"messages": [user(json!([{"type": "text", "text": words}]))]})),
    ]
    .into_iter()
    .map(|(name, mut body)| {
        body["model"] = json!("auto");
        body["max_tokens"] = json!(100);
        (name, body)
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_shape_of_request_passes_the_approval_amount_unapproved() {
    let provider = SimServer::start(Behavior::reply()).await.unwrap();
    let gw = gateway(&provider, 0).await;
    // Small shapes go through; large ones must need approval. Either way, nothing admitted
    // without approval is billed above the approval amount.
    for bulk in [500, 20_000] {
        for (shape, body) in shaped(bulk) {
            let before = billed(&provider);
            let (status, answer, _) = post(&gw, SLY_KEY, &body).await;
            let bill = billed(&provider) - before;
            match status {
                200 => assert!(
                    bill <= APPROVAL_ABOVE,
                    "{shape} ({bulk} bytes): admitted without approval, billed {bill} sats"
                ),
                403 => {
                    assert_eq!(answer["error"]["code"], "approval_required", "{shape}");
                    assert_eq!(bill, 0, "{shape}: refused, yet the provider billed {bill}");
                }
                other => panic!("{shape} ({bulk} bytes): {other} {answer}"),
            }
            if bulk == 20_000 {
                assert_eq!(status, 403, "{shape}: 20 KB must need approval");
            } else {
                assert_eq!(status, 200, "{shape}: 500 bytes is well within the amount");
            }
        }
    }
    let billed = billed(&provider);
    assert!(billed > 0);
    assert!(charged(gw, "sly").await >= billed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpriceable_parts_and_bad_n_are_refused_before_the_provider() {
    let provider = SimServer::start(Behavior::reply()).await.unwrap();
    let gw = gateway(&provider, 0).await;
    let audio = json!({"model": "auto", "messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]});
    let (status, body, _) = post(&gw, BURST_KEY, &audio).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "unpriceable_content");
    for n in [json!("3"), json!(2.5), json!(0), json!(100)] {
        let request =
            json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}], "n": n});
        let (status, body, _) = post(&gw, BURST_KEY, &request).await;
        assert_eq!(status, 400, "n = {n}: {body}");
        assert_eq!(body["error"]["code"], "invalid_n");
    }
    assert_eq!(provider.requests(), 0);
    assert_eq!(charged(gw, "burst").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_burst_of_shaped_calls_never_bills_past_the_session_budget() {
    let provider = SimServer::start(Behavior::Trickle {
        every: Duration::from_millis(20),
    })
    .await
    .unwrap();
    let gw = gateway(&provider, 0).await;
    // About 7 KB each in tool-call arguments: roughly 40 sats billed per call, so 300 sats
    // hold about seven, and thirty arrive at once.
    let bodies: Vec<Value> = (0..30).map(|i| shaped(7_000)[i % 4].1.clone()).collect();
    let calls = bodies.iter().map(|body| post(&gw, BURST_KEY, body));
    let results = futures_util::future::join_all(calls).await;
    let ok = results.iter().filter(|r| r.0 == 200).count();
    let refused: Vec<_> = results.iter().filter(|r| r.0 == 429).collect();
    assert!(ok >= 1 && !refused.is_empty(), "{ok} admitted");
    assert_eq!(ok + refused.len(), 30);
    let (_, body, headers) = refused[0];
    assert_eq!(body["error"]["code"], "session_budget_exceeded");
    // Gateway sessions are UTC days: the session budget resets at the next midnight.
    assert_eq!(body["error"]["resets_at"].as_u64().unwrap() % 86_400, 0);
    assert!(headers.contains_key("retry-after"));
    let billed = billed(&provider);
    assert!(
        billed <= SESSION_BUDGET,
        "the provider billed {billed} sats against a {SESSION_BUDGET}-sat session"
    );
    assert!(charged(gw, "burst").await >= billed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_times_out_is_charged_every_attempt_the_provider_billed() {
    let provider = SimServer::start(Behavior::Hang(Duration::from_secs(30)))
        .await
        .unwrap();
    let gw = gateway(&provider, 2).await;
    let request = json!({"model": "auto", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 1000});
    let (status, body, _) = post(&gw, BURST_KEY, &request).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(
        provider.bill().len(),
        3,
        "one try and two retries, each billed"
    );
    let billed = billed(&provider);
    assert!(charged(gw, "burst").await >= billed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_where_the_budget_does() {
    let provider = SimServer::start(Behavior::Status {
        status: 503,
        retry_after: None,
    })
    .await
    .unwrap();
    let gw = gateway(&provider, 5).await;
    // About 130 sats each (8,000 output tokens at 15 per 1,000, plus input): two attempts fit
    // in the 300-sat session, a third does not.
    let request = json!({"model": "auto", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8000});
    let (status, body, _) = post(&gw, BURST_KEY, &request).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the budget does not cover another attempt"),
        "{body}"
    );
    assert_eq!(
        provider.requests(),
        2,
        "no attempt the budget did not cover"
    );
    let billed = billed(&provider);
    assert!(billed <= SESSION_BUDGET);
    assert!(charged(gw, "burst").await >= billed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_after_the_request_arrived_is_charged() {
    let provider = SimServer::start(Behavior::Status {
        status: 500,
        retry_after: None,
    })
    .await
    .unwrap();
    let gw = gateway(&provider, 0).await;
    let request = json!({"model": "auto", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 200});
    let (status, _, _) = post(&gw, BURST_KEY, &request).await;
    assert_eq!(status, 502);
    let billed = billed(&provider);
    assert!(billed > 0);
    assert!(charged(gw, "burst").await >= billed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_free_and_released() {
    let provider = SimServer::start(Behavior::Status {
        status: 429,
        retry_after: Some(0),
    })
    .await
    .unwrap();
    let gw = gateway(&provider, 0).await;
    let request = json!({"model": "auto", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 200});
    let (status, _, _) = post(&gw, BURST_KEY, &request).await;
    assert_eq!(status, 502);
    assert_eq!(provider.requests(), 1);
    assert_eq!(billed(&provider), 0);
    let (gateway, store) = gw.stop().await;
    let tracker = gateway.orchestrator().tracker();
    assert_eq!(tracker.daily_total("burst"), 0);
    assert_eq!(tracker.outstanding_reservations("burst").unwrap(), 0);
    assert!(
        ao_budget::Ledger::holds(&store).unwrap().is_empty(),
        "the released call leaves no hold"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_dropped_after_its_first_chunk_is_charged_the_whole_bill() {
    let provider = SimServer::start(Behavior::Trickle {
        every: Duration::from_millis(100),
    })
    .await
    .unwrap();
    let gw = gateway(&provider, 0).await;
    let request = json!({"model": "auto", "stream": true, "messages": [{"role": "user", "content": "tell me a long story"}], "max_tokens": 3000});
    let response = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(BURST_KEY)
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));
    drop(body);
    // The provider keeps generating: it bills the whole output.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let billed = billed(&provider);
    assert!(billed >= 45, "the provider billed {billed}");
    assert!(charged(gw, "burst").await >= billed);
}

/// The sisyphus agent of the default test gateway is supervised: every call files a request.
mod approvals {
    use ao_approvals::{Verdict, build_decision_event};
    use ao_sim::{Behavior, SimServer};
    use nostr::JsonUtil;
    use serde_json::{Value, json};

    use crate::{ADMIN_TOKEN, Running, SISYPHUS_KEY, start};

    async fn ask(gw: &Running, body: &Value, approval: Option<&str>) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(SISYPHUS_KEY)
            .json(body);
        if let Some(id) = approval {
            request = request.header("x-ao-approval", id);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn approve(gw: &Running, id: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let event = build_decision_event(&gw.operator, id, Verdict::Approve, None, now).unwrap();
        let response = reqwest::Client::new()
            .post(gw.url("/admin/approvals/signed"))
            .bearer_auth(ADMIN_TOKEN)
            .body(event.as_json())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
    }

    async fn sims() -> (SimServer, SimServer) {
        (
            SimServer::start(Behavior::reply()).await.unwrap(),
            SimServer::start(Behavior::reply()).await.unwrap(),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_of_requests_needing_approval_is_capped() {
        let (openai, codex) = sims().await;
        let gw = start(&openai, &codex, 1 << 20).await;
        let body = json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10});
        for _ in 0..ao_approvals::DEFAULT_MAX_PENDING {
            assert_eq!(ask(&gw, &body, None).await.0, 403);
        }
        let (status, refused) = ask(&gw, &body, None).await;
        assert_eq!(status, 429, "{refused}");
        assert_eq!(refused["error"]["code"], "too_many_pending_approvals");
        let listed: Value = reqwest::Client::new()
            .get(gw.url("/admin/approvals?limit=10"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(listed["pending"].as_array().unwrap().len(), 10, "paged");
        assert!(listed["next"].is_string());
        assert_eq!(openai.requests() + codex.requests(), 0);
        gw.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_approval_does_not_carry_over_to_another_request() {
        let (openai, codex) = sims().await;
        let gw = start(&openai, &codex, 1 << 20).await;
        let asked = json!({"model": "auto", "messages": [{"role": "user", "content": "summarise the report"}], "max_tokens": 10});
        let (status, body) = ask(&gw, &asked, None).await;
        assert_eq!(status, 403);
        let id = body["error"]["approval_id"].as_str().unwrap().to_owned();
        approve(&gw, &id).await;
        // The agent swaps the body under the approved id.
        let swapped = json!({"model": "auto", "messages": [{"role": "user", "content": "something the operator never saw"}], "max_tokens": 10});
        let (status, body) = ask(&gw, &swapped, Some(&id)).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "approval_mismatch");
        assert_eq!(openai.requests() + codex.requests(), 0);
        // The request it was filed for goes through, once.
        assert_eq!(ask(&gw, &asked, Some(&id)).await.0, 200);
        assert_eq!(ask(&gw, &asked, Some(&id)).await.0, 403);
        gw.stop().await;
    }
}

/// A provider that reports more than the estimate bounded is charged in full; the excess is
/// counted on /metrics and in the call's audit entry, and the next call is refused once the
/// budget is reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overage_is_charged_in_full_counted_and_stops_the_next_call() {
    let provider = SimServer::start(Behavior::Reply {
        content: "far more than asked".into(),
        usage: Some((10_000, 20_000)),
    })
    .await
    .unwrap();
    // Not billing mode: the sim reports its scripted usage, 10,000 in and 20,000 out.
    let gw = serve(&provider, 0).await;
    let request =
        json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10});
    let (status, _, headers) = post(&gw, BURST_KEY, &request).await;
    assert_eq!(status, 200);
    // 10,000 x 5 + 20,000 x 15 = 350,000 msats: 350 sats, past the 300-sat session.
    assert_eq!(headers["x-ao-cost-sats"], "350");
    let metrics = reqwest::get(gw.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let overage: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("ao_overage_sats_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(overage > 300, "{overage}");
    let (status, body, _) = post(&gw, BURST_KEY, &request).await;
    assert_eq!(status, 429, "{body}");
    let (gateway, _) = gw.stop().await;
    let entries = gateway
        .orchestrator()
        .audit()
        .entries(1, usize::MAX)
        .unwrap();
    let audited = entries
        .iter()
        .rev()
        .find(|e| e.kind == "completion")
        .unwrap()
        .detail_json()
        .unwrap();
    assert_eq!(audited["cost_sats"], 350);
    assert_eq!(audited["overage_sats"].as_u64().unwrap(), overage);
}
