use std::sync::Arc;
use std::time::Duration;

use ao_approvals::ApprovalStatus;
use ao_audit::AuditLog;
use ao_budget::{BudgetError, Ledger};
use ao_hooks::{ToolCall, ToolOutput};
use ao_orchestrator::{CallOptions, Metered, OrchestratorError, StreamEvent};
use ao_routing::BackendProvider;
use ao_routing::http::{BackendError, ChatMessage, ChatRequest};
use ao_sim::{Behavior, SimServer};
use ao_types::{AgentName, TokenUsage};
use futures_util::StreamExt;

use crate::{config_text, orchestrator};

fn hello(max_tokens: u64) -> ChatRequest {
    ChatRequest::new(vec![ChatMessage::new("user", "Say hello to the team.")])
        .with_max_tokens(max_tokens)
}

async fn servers() -> (SimServer, SimServer) {
    let reply = |content: &str, usage| Behavior::Reply {
        content: content.into(),
        usage: Some(usage),
    };
    (
        SimServer::start(reply("from openai", (1_000, 500)))
            .await
            .unwrap(),
        SimServer::start(reply("from codex", (2_000, 1_000)))
            .await
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_settles_the_answering_backends_price_of_the_reported_usage() {
    let dir = tempfile::tempdir().unwrap();
    let (openai, codex) = servers().await;
    let (o, store) = orchestrator(&config_text(dir.path(), &openai, &codex, 0));
    let done = o.complete("oracle", hello(100)).await.unwrap();
    assert_eq!(done.backend, BackendProvider::OpenAI);
    assert_eq!(done.response.content, "from openai");
    assert_eq!(done.response.usage, TokenUsage::new(1_000, 500));
    // 1,000 × 5 + 500 × 15 = 12,500 msats: 13 sats, rounded up.
    assert_eq!(done.cost_sats, 13);
    assert_eq!(o.tracker().daily_total("oracle"), 13);
    let rows = store.load_agent_range("oracle", 0, u64::MAX).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].cost_sats,
            rows[0].input_tokens,
            rows[0].output_tokens
        ),
        (13, 1_000, 500)
    );
    assert_eq!(rows[0].backend, BackendProvider::OpenAI);
    let audit = store.entries(1, usize::MAX).unwrap();
    let last = audit.last().unwrap();
    assert_eq!(
        (last.kind.as_str(), last.agent.as_str()),
        ("completion", "oracle")
    );
    assert_eq!(last.detail_json().unwrap()["cost_sats"], 13);
    assert_eq!(openai.last_request().unwrap()["model"], "gpt-4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_settles_the_usage_of_its_final_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let (openai, codex) = servers().await;
    let (o, _store) = orchestrator(&config_text(dir.path(), &openai, &codex, 0));
    let mut stream = o
        .complete_stream("oracle", hello(100), CallOptions::default())
        .await
        .unwrap();
    let mut text = String::new();
    let mut done = None;
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            StreamEvent::Chunk(c) => text.push_str(&c.delta),
            StreamEvent::Done { usage, cost_sats } => done = Some((usage, cost_sats)),
        }
    }
    assert_eq!(text, "from openai");
    assert_eq!(
        done,
        Some((Metered::Reported(TokenUsage::new(1_000, 500)), 13))
    );
    drop(stream);
    o.drain().await;
    assert_eq!(o.tracker().daily_total("oracle"), 13);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_then_success() {
    let dir = tempfile::tempdir().unwrap();
    let (openai, codex) = servers().await;
    openai.script([Behavior::Status {
        status: 429,
        retry_after: Some(0),
    }]);
    let (o, _store) = orchestrator(&config_text(dir.path(), &openai, &codex, 0));
    let done = o.complete("oracle", hello(100)).await.unwrap();
    assert_eq!(done.backend, BackendProvider::OpenAI);
    assert_eq!(openai.requests(), 2);
    assert_eq!(codex.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_first_backend_falls_back_and_is_priced_at_the_second() {
    let dir = tempfile::tempdir().unwrap();
    let (openai, codex) = servers().await;
    openai.set_default(Behavior::Status {
        status: 500,
        retry_after: None,
    });
    let (o, store) = orchestrator(&config_text(dir.path(), &openai, &codex, 0));
    let done = o.complete("oracle", hello(100)).await.unwrap();
    assert_eq!(done.backend, BackendProvider::Codex);
    assert_eq!(done.response.content, "from codex");
    assert_eq!(openai.requests(), 2, "one try and one retry");
    // Codex prices: 2,000 × 3 + 1,000 × 15 = 21,000 msats = 21 sats; and the two 500s reached
    // OpenAI, which may have billed them: each is charged the estimate.
    o.drain().await;
    let audit = store.entries(1, usize::MAX).unwrap();
    let detail = audit.last().unwrap().detail_json().unwrap();
    assert_eq!(detail["billed_failed_attempts"], 2);
    let estimate = detail["estimate_sats"].as_u64().unwrap();
    assert_eq!(done.cost_sats, 21 + 2 * estimate);
    let rows = store.load_agent_range("oracle", 0, u64::MAX).unwrap();
    assert_eq!(rows[0].backend, BackendProvider::Codex);
    assert_eq!(rows[0].cost_sats, done.cost_sats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_is_charged_the_estimate_of_every_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let (openai, codex) = servers().await;
    openai.set_default(Behavior::Hang(Duration::from_secs(30)));
    codex.set_default(Behavior::Hang(Duration::from_secs(30)));
    let (o, store) = orchestrator(&config_text(dir.path(), &openai, &codex, 0));
    let err = o.complete("oracle", hello(100)).await.unwrap_err();
    let OrchestratorError::Backend(fallback) = &err else {
        panic!("{err}")
    };
    assert!(
        fallback
            .attempts
            .iter()
            .all(|a| matches!(a.error, BackendError::Timeout { .. })),
        "{err}"
    );
    // Each request reached its backend, which may have billed it whatever came back.
    o.drain().await;
    let attempts = u64::from(fallback.billed_attempts());
    assert_eq!(attempts, fallback.attempts.len() as u64);
    let detail = store
        .entries(1, usize::MAX)
        .unwrap()
        .last()
        .unwrap()
        .detail_json()
        .unwrap();
    let estimate = detail["estimate_sats"].as_u64().unwrap();
    assert_eq!(o.tracker().daily_total("oracle"), attempts * estimate);
    assert_eq!(o.tracker().outstanding_reservations("oracle").unwrap(), 0);
    assert_eq!(store.load_range(0, u64::MAX).unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_reply_is_an_error_and_its_estimate_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (openai, codex) = servers().await;
    openai.set_default(Behavior::Malformed);
    let (o, _store) = orchestrator(&config_text(dir.path(), &openai, &codex, 0));
    let err = o.complete("oracle", hello(100)).await.unwrap_err();
    assert!(err.to_string().contains("malformed reply"), "{err}");
    assert_eq!(
        codex.requests(),
        0,
        "a malformed reply does not fall back: it may have been paid for"
    );
    assert!(o.tracker().daily_total("oracle") > 0);
    assert_eq!(o.tracker().outstanding_reservations("oracle").unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_off_settles_an_estimate_from_the_text_received() {
    let dir = tempfile::tempdir().unwrap();
    let (openai, codex) = servers().await;
    openai.set_default(Behavior::StreamCut { chunks: 4 });
    let (o, store) = orchestrator(&config_text(dir.path(), &openai, &codex, 0));
    let mut stream = o
        .complete_stream("oracle", hello(100), CallOptions::default())
        .await
        .unwrap();
    let mut text = String::new();
    let mut cut = false;
    while let Some(event) = stream.next().await {
        match event {
            Ok(StreamEvent::Chunk(c)) => text.push_str(&c.delta),
            Ok(StreamEvent::Done { .. }) => panic!("a cut stream has no clean end"),
            Err(e) => {
                assert!(e.to_string().contains("cut the stream off"), "{e}");
                cut = true;
            }
        }
    }
    assert!(cut && !text.is_empty());
    drop(stream);
    o.drain().await;
    let rows = store.load_agent_range("oracle", 0, u64::MAX).unwrap();
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0].output_tokens >= 1,
        "spent tokens are never recorded as zero"
    );
    assert!(rows[0].cost_sats >= 1);
    assert_eq!(o.tracker().outstanding_reservations("oracle").unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_over_budget_never_reaches_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let (openai, codex) = servers().await;
    let (o, _store) = orchestrator(&config_text(dir.path(), &openai, &codex, 0));
    // 4,000 output tokens at 15 sats per 1,000 is 60 sats, over `poor`'s 10.
    let err = o.complete("poor", hello(4_000)).await.unwrap_err();
    assert!(
        matches!(
            err,
            OrchestratorError::Budget(BudgetError::DailyExceeded { limit_sats: 10, .. })
        ),
        "{err}"
    );
    assert_eq!(openai.requests() + codex.requests(), 0);
    assert!(matches!(
        o.complete("nobody", hello(1)).await,
        Err(OrchestratorError::UnknownAgent { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervised_agent_waits_for_approval() {
    let dir = tempfile::tempdir().unwrap();
    let (openai, codex) = servers().await;
    // Without waiting: the call stops with the request id, and goes through once approved.
    let (o, _store) = orchestrator(&config_text(dir.path(), &openai, &codex, 0));
    let err = o.complete("sisyphus", hello(100)).await.unwrap_err();
    let OrchestratorError::NeedsApproval { request_id } = err else {
        panic!("{err}")
    };
    assert_eq!(codex.requests(), 0);
    assert_eq!(o.tracker().outstanding_reservations("sisyphus").unwrap(), 0);
    let coordinator = o.coordinator("sisyphus").unwrap();
    // The operator sees what the call asks for: its size and the start of its last message,
    // with the agent's control characters (a terminal escape, say) removed.
    let asked = ChatRequest::new(vec![
        ChatMessage::new("system", "be brief"),
        ChatMessage::new("user", format!("wire \u{1b}[2J{}", "x".repeat(500))),
    ])
    .with_max_tokens(100);
    let Err(OrchestratorError::NeedsApproval { request_id: other }) =
        o.complete("sisyphus", asked).await
    else {
        panic!("an approval was needed")
    };
    let description = coordinator.record(&other).unwrap().request.description;
    assert!(
        description
            .contains("2 message(s), at most 100 output tokens; last message: \"wire [2Jxxx"),
        "{description}"
    );
    assert!(!description.contains('\u{1b}'), "{description}");
    assert!(
        description.ends_with("x…\""),
        "cut at 200 characters: {description}"
    );
    let with = |id: &str| CallOptions {
        approval_id: Some(id.to_owned()),
        ..CallOptions::default()
    };
    assert!(matches!(
        o.complete_with("sisyphus", hello(100), with(&request_id))
            .await,
        Err(OrchestratorError::NotApproved {
            status: Some(ApprovalStatus::Pending),
            ..
        })
    ));
    coordinator.approve(&request_id).unwrap();
    let done = o
        .complete_with("sisyphus", hello(100), with(&request_id))
        .await
        .unwrap();
    assert_eq!(done.approval_id.as_deref(), Some(request_id.as_str()));
    assert_eq!(codex.requests(), 1);
    assert!(
        matches!(
            o.complete_with("sisyphus", hello(100), with(&request_id))
                .await,
            Err(OrchestratorError::NotApproved { .. })
        ),
        "an approval allows one call"
    );
    drop(o);

    // Waiting: the call resumes as soon as the operator approves from elsewhere.
    let dir = tempfile::tempdir().unwrap();
    let (o, _store) = orchestrator(&config_text(dir.path(), &openai, &codex, 30));
    let call = {
        let o = o.clone();
        tokio::spawn(async move { o.complete("sisyphus", hello(100)).await })
    };
    let coordinator = Arc::clone(o.coordinator("sisyphus").unwrap());
    let id = loop {
        if let Some(p) = coordinator.list_pending().first() {
            break p.request_id.clone();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    coordinator.approve(&id).unwrap();
    let done = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(done.response.content, "from codex");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (openai, codex) = servers().await;
    let text = config_text(dir.path(), &openai, &codex, 0);
    {
        let (o, _store) = orchestrator(&text);
        o.complete("oracle", hello(100)).await.unwrap();
        o.complete("oracle", hello(100)).await.unwrap();
    }
    let (o, _store) = orchestrator(&text);
    assert_eq!(o.tracker().daily_total("oracle"), 26);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_call_runs_through_the_hooks() {
    let dir = tempfile::tempdir().unwrap();
    let (openai, codex) = servers().await;
    let (o, store) = orchestrator(&config_text(dir.path(), &openai, &codex, 0));
    let agent = AgentName::new("oracle").unwrap();
    let call = ToolCall::new(
        agent.clone(),
        "web_search",
        serde_json::json!({"q": "rust", "agent": "poor"}),
    )
    .with_cost_estimate(50);
    let output = o
        .run_tool(call, |_| async {
            ToolOutput::new("results").with_usage(TokenUsage::new(10_000, 5_000))
        })
        .await
        .unwrap();
    // OpenAI prices (oracle's route): 10,000 × 5 + 5,000 × 15 = 125 sats.
    assert_eq!(output.cost_sats, Some(125));
    assert_eq!(o.tracker().daily_total("oracle"), 125);
    assert_eq!(o.tracker().daily_total("poor"), 0);
    assert!(
        store
            .entries(1, usize::MAX)
            .unwrap()
            .iter()
            .any(|e| e.kind == "tool.completed")
    );
    let over =
        ToolCall::new(agent, "web_search", serde_json::json!({})).with_cost_estimate(1_000_000);
    let ran = std::sync::atomic::AtomicBool::new(false);
    let err = o
        .run_tool(over, |_| async {
            ran.store(true, std::sync::atomic::Ordering::SeqCst);
            ToolOutput::new("x")
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, OrchestratorError::ToolBlocked { .. }),
        "{err}"
    );
    assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_allows_one_call_even_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (openai, codex) = servers().await;
    let text = config_text(dir.path(), &openai, &codex, 0);
    let id = {
        let (o, _store) = orchestrator(&text);
        let Err(OrchestratorError::NeedsApproval { request_id }) =
            o.complete("sisyphus", hello(100)).await
        else {
            panic!("expected a pending approval")
        };
        o.coordinator("sisyphus")
            .unwrap()
            .approve(&request_id)
            .unwrap();
        let with = CallOptions {
            approval_id: Some(request_id.clone()),
            ..CallOptions::default()
        };
        o.complete_with("sisyphus", hello(100), with).await.unwrap();
        request_id
    };
    let (o, _store) = orchestrator(&text);
    let with = CallOptions {
        approval_id: Some(id),
        ..CallOptions::default()
    };
    let err = o
        .complete_with("sisyphus", hello(100), with)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("was already used"), "{err}");
    assert_eq!(codex.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_goes_away_mid_call_is_charged_the_estimate() {
    let dir = tempfile::tempdir().unwrap();
    let (openai, codex) = servers().await;
    openai.set_default(Behavior::Hang(Duration::from_millis(800)));
    let (o, store) = orchestrator(&config_text(dir.path(), &openai, &codex, 0));
    let call = {
        let o = o.clone();
        tokio::spawn(async move { o.complete("oracle", hello(100)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(openai.requests(), 1, "the request reached the backend");
    call.abort();
    let _ = call.await;
    o.drain().await;
    assert_eq!(o.tracker().outstanding_reservations("oracle").unwrap(), 0);
    let rows = store.load_agent_range("oracle", 0, u64::MAX).unwrap();
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0].cost_sats >= 2,
        "charged the estimate: {:?}",
        rows[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_sent_cannot_ask_for_more_than_was_reserved() {
    let dir = tempfile::tempdir().unwrap();
    let (openai, codex) = servers().await;
    let (o, _store) = orchestrator(&config_text(dir.path(), &openai, &codex, 0));
    // No limit: the orchestrator assumes (and sends) 1,024 output tokens.
    o.complete(
        "oracle",
        ChatRequest::new(vec![ChatMessage::new("user", "hi")]),
    )
    .await
    .unwrap();
    assert_eq!(openai.last_request().unwrap()["max_tokens"], 1_024);
    // Eight choices of 100 tokens at 15 sats per 1,000 are 12 sats: over `poor`'s 10.
    let mut many = hello(100);
    many.extra.insert("n".into(), serde_json::json!(8));
    let budget = o.complete("poor", many).await.unwrap_err();
    assert!(matches!(budget, OrchestratorError::Budget(_)), "{budget}");
    // Past the configured maximum of choices, the request is refused before anything else.
    let mut too_many = hello(100);
    too_many.extra.insert("n".into(), serde_json::json!(20));
    let refused = o.complete("oracle", too_many).await.unwrap_err();
    assert!(
        matches!(refused, OrchestratorError::BadRequest(_)),
        "{refused}"
    );
    assert_eq!(o.tracker().outstanding_reservations("oracle").unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_that_pays_directly_is_charged_what_it_paid() {
    let dir = tempfile::tempdir().unwrap();
    let (openai, codex) = servers().await;
    let (o, _store) = orchestrator(&config_text(dir.path(), &openai, &codex, 0));
    let call = ToolCall::new(
        AgentName::new("oracle").unwrap(),
        "buy_dataset",
        serde_json::json!({}),
    )
    .with_cost_estimate(500);
    let output = o
        .run_tool(call, |_| async {
            ToolOutput::new("bought").with_spent_sats(420)
        })
        .await
        .unwrap();
    assert_eq!(output.cost_sats, Some(420));
    assert_eq!(o.tracker().daily_total("oracle"), 420);
}
