//! The HTTP backends against a real OpenAI-compatible server on loopback (`ao-sim`).

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]
#![allow(missing_docs, reason = "test code")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ao_routing::http::{
    AttemptGate, Backend, BackendError, BackendPool, ChatMessage, ChatRequest, ChatResponse,
    ClientOptions, OpenAiBackend, SecretString, Ungated,
};
use ao_routing::{BackendConfig, BackendProvider};
use ao_sim::{Behavior, SimServer};
use ao_types::TokenUsage;
use futures_util::StreamExt;

mod estimate;

fn request() -> ChatRequest {
    ChatRequest::new(vec![ChatMessage::new("user", "Say hello.")]).with_max_tokens(64)
}

fn fast() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_millis(500),
        max_retries: 2,
        backoff: Duration::from_millis(10),
        ..ClientOptions::default()
    }
}

fn backend(sim: &SimServer, config: BackendConfig) -> OpenAiBackend {
    OpenAiBackend::with_api_key(
        config.with_endpoint(sim.url()),
        Some(SecretString::new("sk-test-secret")),
        fast(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_reply_comes_with_the_backends_usage() {
    let sim = SimServer::start(Behavior::Reply {
        content: "hello there".into(),
        usage: Some((12, 3)),
    })
    .await
    .unwrap();
    let b = backend(&sim, BackendConfig::openai("gpt-4"));
    let reply = b.complete(&request()).await.unwrap();
    assert_eq!(reply.content, "hello there");
    assert_eq!(reply.usage, TokenUsage::new(12, 3));
    assert!(reply.model.contains("simulated"));
    let sent = sim.last_request().unwrap();
    assert_eq!(sent["model"], "gpt-4");
    assert_eq!(sent["max_tokens"], 64);
    assert!(sent.get("stream").is_none());
}

#[tokio::test]
async fn a_stream_delivers_text_and_final_usage() {
    let sim = SimServer::start(Behavior::Reply {
        content: "one two three".into(),
        usage: Some((7, 5)),
    })
    .await
    .unwrap();
    let b = backend(&sim, BackendConfig::local("llama3", "unused"));
    let mut stream = b.stream(&request()).await.unwrap();
    let mut text = String::new();
    let mut usage = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        text.push_str(&chunk.delta);
        usage = usage.or(chunk.usage);
    }
    assert_eq!(text, "one two three");
    assert_eq!(usage, Some(TokenUsage::new(7, 5)));
    assert_eq!(
        sim.last_request().unwrap()["stream_options"]["include_usage"],
        true
    );
}

/// A pool of one backend on `sim`, and its configuration.
fn pool_of(sim: &SimServer) -> (BackendPool, BackendConfig) {
    let config = BackendConfig::openai("gpt-4").with_endpoint(sim.url());
    let pool = BackendPool::new().with_backend(Arc::new(backend(sim, config.clone())));
    (pool, config)
}

/// A gate that allows `left` more attempts, and remembers what it was told.
struct Allowance {
    left: std::sync::Mutex<u32>,
    billed_seen: std::sync::Mutex<Vec<u32>>,
}

#[async_trait::async_trait]
impl AttemptGate for Allowance {
    async fn allow_another(&self, billed: u32) -> bool {
        self.billed_seen.lock().unwrap().push(billed);
        let mut left = self.left.lock().unwrap();
        if *left == 0 {
            return false;
        }
        *left -= 1;
        true
    }
}

#[tokio::test]
async fn a_rate_limit_is_retried_after_the_time_asked() {
    let sim = SimServer::start(Behavior::reply()).await.unwrap();
    sim.script([Behavior::Status {
        status: 429,
        retry_after: Some(1),
    }]);
    let (pool, config) = pool_of(&sim);
    let started = Instant::now();
    let answered = pool
        .complete(&[&config], &request(), &Ungated)
        .await
        .unwrap();
    assert_eq!(answered.failed.len(), 1);
    assert_eq!(answered.billed_failures(), 0, "a 429 did no work");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
    assert_eq!(sim.requests(), 2);
}

#[tokio::test]
async fn retries_end_and_the_error_says_what_happened() {
    let sim = SimServer::start(Behavior::Status {
        status: 503,
        retry_after: None,
    })
    .await
    .unwrap();
    let (pool, config) = pool_of(&sim);
    let err = pool
        .complete(&[&config], &request(), &Ungated)
        .await
        .unwrap_err();
    assert!(
        matches!(err.last(), Some(BackendError::Status { status: 503, .. })),
        "{err}"
    );
    assert_eq!(sim.requests(), 3, "one try and two retries");
    assert_eq!(err.billed_attempts(), 3, "a 5xx may have been billed");
    sim.set_default(Behavior::Status {
        status: 400,
        retry_after: None,
    });
    let err = pool
        .complete(&[&config], &request(), &Ungated)
        .await
        .unwrap_err();
    assert!(!err.last().unwrap().is_retryable());
    assert_eq!(err.billed_attempts(), 0, "a 4xx did no work");
    assert_eq!(sim.requests(), 4, "a client error is not retried");
}

#[tokio::test]
async fn no_retry_goes_ahead_without_the_gates_consent() {
    let sim = SimServer::start(Behavior::Status {
        status: 502,
        retry_after: None,
    })
    .await
    .unwrap();
    let (pool, config) = pool_of(&sim);
    let gate = Allowance {
        left: std::sync::Mutex::new(1),
        billed_seen: std::sync::Mutex::new(Vec::new()),
    };
    let err = pool
        .complete(&[&config], &request(), &gate)
        .await
        .unwrap_err();
    assert!(err.gate_refused);
    assert_eq!(sim.requests(), 2, "one try, one retry the gate allowed");
    assert_eq!(*gate.billed_seen.lock().unwrap(), vec![1, 2]);
    assert!(
        err.to_string()
            .contains("the budget does not cover another attempt")
    );
}

#[tokio::test]
async fn a_failing_backend_falls_back_to_the_next() {
    let broken = SimServer::start(Behavior::Status {
        status: 500,
        retry_after: None,
    })
    .await
    .unwrap();
    let healthy = SimServer::start(Behavior::Reply {
        content: "from the second".into(),
        usage: Some((1, 1)),
    })
    .await
    .unwrap();
    let first = BackendConfig::openai("gpt-4").with_endpoint(broken.url());
    let second = BackendConfig::codex("sonnet-4").with_endpoint(healthy.url());
    let pool = BackendPool::new()
        .with_cooldown(1, Duration::from_secs(60))
        .with_backend(Arc::new(backend(&broken, first.clone())))
        .with_backend(Arc::new(backend(&healthy, second.clone())));
    let answered = pool
        .complete(&[&first, &second], &request(), &Ungated)
        .await
        .unwrap();
    assert_eq!(answered.provider, BackendProvider::Codex);
    assert_eq!(answered.value.content, "from the second");
    assert_eq!(
        answered.billed_failures(),
        3,
        "three 500s, each maybe billed"
    );
    assert_eq!(broken.requests(), 3);
    // The broken backend now cools down: the next call goes straight to the second.
    assert!(pool.is_cooling(BackendProvider::OpenAI));
    pool.complete(&[&first, &second], &request(), &Ungated)
        .await
        .unwrap();
    assert_eq!(broken.requests(), 3);
}

#[tokio::test]
async fn a_hanging_backend_times_out() {
    let sim = SimServer::start(Behavior::Hang(Duration::from_secs(30)))
        .await
        .unwrap();
    let b = OpenAiBackend::with_api_key(
        BackendConfig::openai("gpt-4").with_endpoint(sim.url()),
        None,
        ClientOptions {
            timeout: Duration::from_millis(200),
            max_retries: 0,
            ..ClientOptions::default()
        },
    )
    .unwrap();
    let started = Instant::now();
    let err = b.complete(&request()).await.unwrap_err();
    assert!(matches!(err, BackendError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn malformed_and_cut_replies_are_clear_errors() {
    let sim = SimServer::start(Behavior::Malformed).await.unwrap();
    let b = backend(&sim, BackendConfig::openai("gpt-4"));
    let err = b.complete(&request()).await.unwrap_err();
    assert!(matches!(err, BackendError::Malformed { .. }), "{err}");
    assert!(!err.is_retryable());
    assert_eq!(sim.requests(), 1);

    sim.set_default(Behavior::StreamCut { chunks: 3 });
    let mut stream = b.stream(&request()).await.unwrap();
    let mut text = String::new();
    let mut end = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => text.push_str(&c.delta),
            Err(e) => end = Some(e),
        }
    }
    assert!(!text.is_empty());
    assert!(
        matches!(end, Some(BackendError::Truncated { received_bytes, .. }) if received_bytes == text.len())
    );
}

#[tokio::test]
async fn api_keys_stay_secret() {
    let sim = SimServer::start(Behavior::reply()).await.unwrap();
    let b = backend(&sim, BackendConfig::openai("gpt-4"));
    assert!(!format!("{b:?}").contains("sk-test-secret"));
    let err = OpenAiBackend::new(
        BackendConfig::openai("gpt-4"),
        Some("AO_TEST_SURELY_UNSET_KEY"),
        fast(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "backend `openai` needs an API key in the environment variable `AO_TEST_SURELY_UNSET_KEY`, which is not set"
    );
    let unreachable = OpenAiBackend::with_api_key(
        BackendConfig::openai("gpt-4").with_endpoint("http://127.0.0.1:9"),
        Some(SecretString::new("sk-test-secret")),
        ClientOptions {
            max_retries: 0,
            ..fast()
        },
    )
    .unwrap();
    let err = unreachable.complete(&request()).await.unwrap_err();
    assert!(matches!(err, BackendError::Connect { .. }), "{err}");
    assert!(!err.may_have_billed(), "the request never left");
    assert!(!err.to_string().contains("sk-test-secret"));
    assert!(
        OpenAiBackend::with_api_key(
            BackendConfig::openai("m").with_endpoint("ftp://x"),
            None,
            fast()
        )
        .is_err()
    );
}

#[test]
fn a_backend_paid_nothing_is_released_and_one_paid_without_a_result_is_charged_what_it_paid() {
    let unpaid = BackendError::Unpaid {
        provider: "dvm".into(),
        reason: "no data vending machine answered".into(),
    };
    assert!(!unpaid.may_have_billed(), "nothing left the wallet");
    assert!(unpaid.is_retryable(), "another backend may answer");
    assert_eq!(unpaid.billed_sats(), None);
    let paid = BackendError::PaidUnanswered {
        provider: "dvm".into(),
        paid_sats: 22,
        reason: "no result".into(),
    };
    assert!(paid.may_have_billed());
    assert!(
        !paid.is_retryable(),
        "a retry takes the paid job up; it is not sent elsewhere"
    );
    assert_eq!(paid.billed_sats(), Some(22));
    let timeout = BackendError::Timeout {
        provider: "openai".into(),
        after: Duration::from_secs(1),
    };
    assert_eq!(
        timeout.billed_sats(),
        None,
        "per-token backends are charged their estimate"
    );
}

#[test]
fn a_reply_written_here_reads_as_an_openai_completion() {
    let reply = ChatResponse::assistant(
        "dvm-1",
        1_700_000_000,
        "llama",
        "hi",
        TokenUsage::new(3, 1),
        Some(22),
    );
    let body: serde_json::Value = serde_json::from_slice(&reply.raw).unwrap();
    assert_eq!(body, reply.body);
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["created"], 1_700_000_000);
    assert_eq!(body["choices"][0]["message"]["content"], "hi");
    assert_eq!(body["usage"]["total_tokens"], 4);
    assert_eq!(reply.billed_sats, Some(22));
}
