//! The spec's identity, autonomy, routing and cost walk-through, with real results.
//!
//! Run it with `cargo run -p agent-orchestrator --example quickstart`.

#![allow(clippy::print_stdout, reason = "an example prints what it shows")]

use agent_orchestrator::threshold::{agent_profile, parse_agent_profile, sign_event};
use agent_orchestrator::{
    AgentIdentity, AutonomyLevel, BackendConfig, BackendProvider, KeygenConfig, KeygenSession,
    MultiBackendRouter, ThresholdConfig,
};
use nostr::{Keys, ToBech32};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("== Threshold configuration ==");
    let placeholder = ThresholdConfig::new(2, 3)
        .with_signers(vec![
            "signer1_pubkey".to_string(),
            "signer2_pubkey".to_string(),
            "signer3_pubkey".to_string(),
        ])
        .with_group_pubkey("group_pubkey".to_string());
    println!(
        "spec's 2-of-3 example, structural check (is_valid): {}",
        placeholder.is_valid()
    );
    match placeholder.validate() {
        Ok(()) => println!("full check (validate): ok"),
        Err(e) => println!("full check (validate) refuses it: {e}"),
    }

    println!();
    println!("== A real 2-of-3 key ceremony (distributed key generation) ==");
    let ceremony = KeygenSession::new(KeygenConfig {
        threshold: 2,
        total: 3,
    })
    .complete()?;
    let config = ThresholdConfig::new(2, 3)
        .with_signers(ceremony.signer_pubkeys())
        .with_group_pubkey(ceremony.group_pubkey());
    config.validate()?;
    println!(
        "group key (the agent's npub): {}",
        ceremony.group.public_key().to_bech32()?
    );
    for (i, signer) in ceremony.signer_pubkeys().iter().enumerate() {
        println!("signer {}: {signer}", i + 1);
    }
    println!("full check (validate): ok; no party ever held the whole key");

    println!();
    println!("== Agent identity ==");
    let operator = Keys::generate();
    let identity = AgentIdentity::new(ceremony.group_pubkey(), "MyAgent", "codex-sonnet-4")
        .with_autonomy(AutonomyLevel::SemiAutonomous)
        .with_operator(operator.public_key().to_bech32()?)
        .with_threshold(config);
    identity.validate()?;
    println!("agent    {} ({})", identity.name, identity.agent_pubkey);
    println!(
        "operator {}",
        identity.operator_pubkey.as_deref().unwrap_or("-")
    );
    println!(
        "autonomy {} (NIP-SA word `{}`), threshold-protected: {}",
        identity.autonomy_level,
        identity.autonomy_level.nip_sa_word(),
        identity.is_threshold_protected()
    );
    let with_placeholder = identity.clone().with_threshold(placeholder);
    println!(
        "with the spec's placeholder config instead, threshold-protected: {} (placeholders protect nothing)",
        with_placeholder.is_threshold_protected()
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let profile = sign_event(
        &ceremony.group,
        &[&ceremony.shares[0], &ceremony.shares[2]],
        agent_profile(&identity, &ceremony.group, now)?,
    )?;
    profile.verify()?;
    println!(
        "NIP-SA profile (kind {}) signed by signers 1 and 3: id {}, verifies with nostr's own check",
        profile.kind.as_u16(),
        profile.id
    );
    println!(
        "parsed back: name {}, autonomy {}",
        parse_agent_profile(&profile)?.name,
        parse_agent_profile(&profile)?.autonomy_level
    );

    println!();
    println!("== Approval required, by autonomy level (threshold 1000 sats) ==");
    for level in AutonomyLevel::ALL {
        let answers: Vec<String> = [0, 1_000, 1_001, 5_000]
            .iter()
            .map(|cost| format!("{cost} sats: {}", level.requires_approval(*cost, 1_000)))
            .collect();
        println!("{:<17} {}", level.as_str(), answers.join(", "));
    }

    println!();
    println!("== Routing ==");
    let router = MultiBackendRouter::new(BackendProvider::Codex)
        .add_backend(BackendConfig::codex("sonnet-4"))
        .add_backend(BackendConfig::openai("gpt-4"))
        .add_backend(BackendConfig::local("llama3", "http://localhost:11434"))
        .route_agent("oracle", BackendProvider::OpenAI)
        .route_agent("explore", BackendProvider::Local);
    for name in ["oracle", "explore", "sisyphus"] {
        let backend = router.route(name)?;
        let chain: Vec<&str> = router
            .fallback_chain(name)
            .iter()
            .map(|b| b.provider.as_str())
            .collect();
        println!(
            "{name:<9} -> {} `{}` (fallback chain: {})",
            backend.provider,
            backend.model,
            chain.join(" -> ")
        );
    }
    let enabled: Vec<&str> = router
        .list_enabled()
        .iter()
        .map(|b| b.provider.as_str())
        .collect();
    println!("enabled backends: {}", enabled.join(", "));

    println!();
    println!("== Cost ==");
    let codex = BackendConfig::codex("sonnet-4");
    println!(
        "codex, 10,000 in + 5,000 out: {} sats ({} msats exactly)",
        codex.calculate_cost(10_000, 5_000),
        codex.calculate_cost_msats(10_000, 5_000)
    );
    println!(
        "codex, 333 in: {} sat ({} msats; rounded up, never free)",
        codex.calculate_cost(333, 0),
        codex.calculate_cost_msats(333, 0)
    );
    let local = router
        .backend(BackendProvider::Local)
        .ok_or("the local backend was added above")?;
    println!(
        "local llama3, 10,000 in + 5,000 out: {} sats (free, but still budgeted)",
        local.calculate_cost(10_000, 5_000)
    );
    Ok(())
}
