//! `ao demo`: the whole spec, end to end, for real, in a minute.

use std::process::ExitCode;

use agent_orchestrator::approvals::{Verdict, build_decision_event};
use agent_orchestrator::audit::AuditLog;
use agent_orchestrator::orchestrator::{CallOptions, OrchestratorError};
use agent_orchestrator::routing::http::{ChatMessage, ChatRequest};
use agent_orchestrator::signer::{EventSigner, LocalSigner};
use agent_orchestrator::threshold::{agent_profile, parse_agent_profile};
use agent_orchestrator::types::{Clock, Report, SystemClock};
use agent_orchestrator::{
    AgentIdentity, AutonomyLevel, Config, KeygenConfig, KeygenSession, Orchestrator,
};
use ao_sim::{Behavior, SimServer};
use nostr::{Keys, ToBech32};

use crate::CliError;
use crate::error::DemoError;

#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// An OpenAI-compatible server to use instead of the simulated one, such as Ollama's
    /// `http://localhost:11434`.
    #[arg(long, value_name = "URL")]
    backend_url: Option<String>,
    /// The model to ask that server for.
    #[arg(long, default_value = "llama3")]
    model: String,
}

fn step(n: u32, title: &str) {
    println!("\n{n}. {title}");
}

pub(crate) fn run(args: DemoArgs) -> Result<ExitCode, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime.block_on(demo(args))
}

async fn demo(args: DemoArgs) -> Result<ExitCode, CliError> {
    println!(
        "agent-orchestrator demo: a threshold-protected agent, routed, budgeted and supervised."
    );

    step(
        1,
        "Key ceremony: a 2-of-3 FROST key by distributed key generation",
    );
    let ceremony = KeygenSession::new(KeygenConfig {
        threshold: 2,
        total: 3,
    })
    .complete()?;
    // Encoding a public key as an npub cannot fail: its error type is `Infallible`.
    let Ok(npub) = ceremony.group.public_key().to_bech32();
    println!("   the agent's npub is {npub}");
    println!("   three signers hold one share each; no one ever held the whole key");

    step(
        2,
        "Identity: a NIP-SA agent profile (kind 39200), signed by signers 1 and 3",
    );
    let operator = Keys::generate();
    let identity = AgentIdentity::new(ceremony.group_pubkey(), "researcher", "demo-model")
        .with_autonomy(AutonomyLevel::SemiAutonomous)
        .with_operator(operator.public_key().to_hex())
        .with_threshold(ceremony.group.threshold_config());
    let now = SystemClock.now()?;
    // The runtime signs the agent's events through an `EventSigner`: here the shares of signers
    // 1 and 3 in this process; given a `[signing]` section, the signer nodes over relays, each
    // share on its own machine (`ao signer`, `ao profile --config`).
    let unsigned = agent_profile(&identity, &ceremony.group, now)?;
    let signer = LocalSigner::new(
        ceremony.group.clone(),
        ceremony
            .shares
            .into_iter()
            .filter(|s| s.index() != 2)
            .collect(),
    );
    let profile = signer.sign_event(unsigned).await?;
    profile.verify().map_err(DemoError::ProfileInvalid)?;
    let parsed = parse_agent_profile(&profile)?;
    println!("   event {} verifies with nostr's own check", profile.id);
    println!(
        "   autonomy `{}`, threshold-protected: {}",
        parsed.autonomy_level.nip_sa_word(),
        parsed.is_threshold_protected()
    );

    step(3, "Backend");
    let mut sim = None;
    let (endpoint, model, label) = match &args.backend_url {
        Some(url) => (url.clone(), args.model.clone(), "a real backend you named"),
        None => {
            let server = SimServer::start(Behavior::reply())
                .await
                .map_err(CliError::Simulator)?;
            let url = server.url();
            sim = Some(server);
            (
                url,
                "demo-model".to_owned(),
                "SIMULATED: ao-sim on loopback, not a language model",
            )
        }
    };
    println!("   {endpoint} ({label})");

    let dir = tempfile::tempdir().map_err(DemoError::TempDir)?;
    let config = Config::from_toml(&format!(
        r#"
data_dir = "{data}"
default_backend = "local"

[[backends]]
provider = "local"
model = "{model}"
endpoint = "{endpoint}"
cost_per_1k_input = 2
cost_per_1k_output = 6

[agents.researcher]
autonomy = "semi-autonomous"
approval_above_sats = 20
operator = "{operator}"
budget = {{ daily_limit_sats = 100, session_limit_sats = 60 }}
"#,
        data = dir.path().display(),
        operator = operator.public_key().to_hex(),
    ))?;
    let (orchestrator, store) = Orchestrator::from_config(&config).map_err(CliError::Start)?;
    println!(
        "   budgets and approvals in SQLite at {}",
        config.database_path().display()
    );

    step(
        4,
        "A small call: routed, reserved, answered, settled at the backend's prices",
    );
    let ask = |text: &str, max_tokens| {
        ChatRequest::new(vec![ChatMessage::new("user", text)]).with_max_tokens(max_tokens)
    };
    let done = orchestrator
        .complete("researcher", ask("Summarise the plan in one line.", 500))
        .await
        .map_err(|source| DemoError::Call {
            call: "small",
            source,
        })?;
    println!(
        "   reply from `{}`: {}",
        done.backend,
        done.response.content.trim()
    );
    println!(
        "   usage {} in + {} out tokens at 2/6 sats per 1k: {} sat(s) recorded",
        done.response.usage.input_tokens, done.response.usage.output_tokens, done.cost_sats
    );

    step(
        5,
        "A costly call: above the 20-sat approval threshold, so it waits for the operator",
    );
    let costly = ask("Write the full report.", 5_000);
    let request_id = match orchestrator.complete("researcher", costly.clone()).await {
        Err(OrchestratorError::NeedsApproval { request_id }) => request_id,
        Err(source) => {
            return Err(DemoError::Call {
                call: "costly",
                source,
            }
            .into());
        }
        Ok(_) => return Err(DemoError::NotHeldForApproval.into()),
    };
    println!("   approval request {request_id} filed; nothing was sent to the backend");
    let coordinator = orchestrator
        .coordinator("researcher")
        .ok_or(DemoError::AgentMissing)?;
    match coordinator.approve(&request_id) {
        Err(e) => println!(
            "   the agent tries to approve itself: refused ({})",
            Report::new(&e)
        ),
        Ok(()) => return Err(DemoError::SelfApproved.into()),
    }
    let decision = build_decision_event(
        &operator,
        &request_id,
        Verdict::Approve,
        Some("go ahead"),
        now,
    )?;
    let status = coordinator.approve_signed(&decision)?;
    println!("   the operator signs a kind-39213 approval: the request is {status}");

    let options = CallOptions {
        approval_id: Some(request_id),
        ..CallOptions::default()
    };
    let done = orchestrator
        .complete_with("researcher", costly, options)
        .await
        .map_err(|source| DemoError::Call {
            call: "approved",
            source,
        })?;
    println!(
        "   retried with the approval: answered, {} sat(s) recorded",
        done.cost_sats
    );

    step(
        6,
        "Budgets hold under concurrency: 10 calls at once, each estimated at 19 sats",
    );
    let remaining = 60u64.saturating_sub(
        orchestrator
            .tracker()
            .session_total("researcher", agent_orchestrator::types::utc_day_start(now)),
    );
    println!("   the 60-sat session budget has {remaining} sats left");
    // A real model takes a while to answer; the simulator answers in a millisecond. Slow it
    // down so the ten calls really are in flight together, as they would be with a real model.
    if let Some(sim) = &sim {
        sim.set_default(Behavior::Hang(std::time::Duration::from_millis(300)));
    }
    let burst =
        (0..10).map(|_| orchestrator.complete("researcher", ask("One more fact, please.", 3_000)));
    let results = futures_util::future::join_all(burst).await;
    let admitted = results.iter().filter(|r| r.is_ok()).count();
    let refused: Vec<&OrchestratorError> =
        results.iter().filter_map(|r| r.as_ref().err()).collect();
    println!(
        "   {admitted} admitted, {} refused before reaching the backend",
        refused.len()
    );
    if let Some(first) = refused.first() {
        println!("   refusal: {}", Report::new(*first));
    }
    println!(
        "   spent today: {} of 100 sats; nothing reserved is left over: {} outstanding",
        orchestrator.tracker().daily_total("researcher"),
        orchestrator
            .tracker()
            .outstanding_reservations("researcher")
            .map_err(DemoError::Budget)?
    );

    step(7, "Audit: every request, decision and cost, hash-chained");
    orchestrator.drain().await;
    match store.verify()? {
        Ok(n) => println!("   {n} entries, every link verified"),
        Err(broken) => return Err(DemoError::AuditBroken(broken).into()),
    }
    for entry in store.entries(1, usize::MAX)? {
        println!("   #{} {} {}", entry.seq, entry.kind, entry.agent);
    }
    println!("\ndone. (The database was in a temporary directory and is gone now.)");
    Ok(ExitCode::SUCCESS)
}
