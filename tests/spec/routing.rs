//! "Multi-Backend Routing" and "Cost Calculation".

use agent_orchestrator::BackendProvider;

#[test]
fn backend_provider_variants() {
    // --- spec: BackendProvider, as settled by docs/DECISIONS.md (Codex once, plus Dvm)
    let providers = [
        BackendProvider::Codex,  // OpenAI Codex API
        BackendProvider::OpenAI, // OpenAI API
        BackendProvider::GptOss, // Local GPT-OSS inference
        BackendProvider::Local,  // Custom local endpoint
        BackendProvider::Dvm,    // NIP-90 compute
    ];
    // --- end spec
    let names: Vec<&str> = providers.iter().map(|p| p.as_str()).collect();
    assert_eq!(names, ["codex", "openai", "gpt-oss", "local", "dvm"]);
}

#[test]
fn backend_config_has_the_spec_fields() {
    use agent_orchestrator::BackendConfig;
    // --- spec: BackendConfig struct, built field by field
    let config = BackendConfig {
        provider: BackendProvider::Local,
        model: "llama3".to_string(),
        endpoint: Some("http://localhost:11434".to_string()),
        cost_per_1k_input: 0,  // sats
        cost_per_1k_output: 0, // sats
        enabled: true,
    };
    // --- end spec
    assert_eq!(
        config,
        BackendConfig::local("llama3", "http://localhost:11434")
    );
}

#[test]
fn multi_backend_router_usage() {
    // --- spec: MultiBackendRouter
    use agent_orchestrator::{BackendConfig, BackendProvider, MultiBackendRouter};

    let router = MultiBackendRouter::new(BackendProvider::Codex)
        // Add backends
        .add_backend(BackendConfig::codex("sonnet-4"))
        .add_backend(BackendConfig::openai("gpt-4"))
        .add_backend(BackendConfig::local("llama3", "http://localhost:11434"))
        // Route specific agents
        .route_agent("oracle", BackendProvider::OpenAI)
        .route_agent("explore", BackendProvider::Local);

    // Get backend for agent
    let backend = router.get_backend("oracle");
    assert_eq!(backend.unwrap().provider, BackendProvider::OpenAI);

    // Default backend for unmapped agents
    let backend = router.get_backend("sisyphus");
    assert_eq!(backend.unwrap().provider, BackendProvider::Codex);

    // List enabled backends
    let enabled = router.list_enabled();
    // --- end spec

    assert_eq!(enabled.len(), 3);
    assert_eq!(router.get_backend("explore").unwrap().model, "llama3");
    assert_eq!(
        router.get_backend("explore").unwrap().endpoint.as_deref(),
        Some("http://localhost:11434")
    );
}

#[test]
fn cost_calculation() {
    use agent_orchestrator::BackendConfig;
    // --- spec: Cost Calculation
    let config = BackendConfig::codex("sonnet-4");

    // 3 sats per 1k input, 15 sats per 1k output
    let cost = config.calculate_cost(10_000, 5_000);
    // = (10_000 * 3 / 1000) + (5_000 * 15 / 1000)
    // = 30 + 75 = 105 sats
    // --- end spec
    assert_eq!(cost, 105);
    assert_eq!(cost, (10_000 * 3 / 1000) + (5_000 * 15 / 1000));
    assert_eq!(config.cost_per_1k_input, 3);
    assert_eq!(config.cost_per_1k_output, 15);
    // docs/DECISIONS.md (Money): round up, never down.
    assert_eq!(config.calculate_cost(333, 0), 1);
    assert_eq!(config.calculate_cost_msats(10_000, 5_000), 105_000);
}
