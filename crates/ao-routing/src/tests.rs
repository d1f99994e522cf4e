use proptest::prelude::*;

use super::*;

fn spec_router() -> MultiBackendRouter {
    MultiBackendRouter::new(BackendProvider::Codex)
        .add_backend(BackendConfig::codex("sonnet-4"))
        .add_backend(BackendConfig::openai("gpt-4"))
        .add_backend(BackendConfig::local("llama3", "http://localhost:11434"))
        .route_agent("oracle", BackendProvider::OpenAI)
        .route_agent("explore", BackendProvider::Local)
}

#[test]
fn constructors_carry_the_decided_prices() {
    let codex = BackendConfig::codex("sonnet-4");
    assert_eq!(
        (
            codex.provider,
            codex.cost_per_1k_input,
            codex.cost_per_1k_output
        ),
        (BackendProvider::Codex, 3, 15)
    );
    assert_eq!(codex.endpoint, None);
    assert!(codex.enabled);
    let openai = BackendConfig::openai("gpt-4");
    assert_eq!(
        (openai.cost_per_1k_input, openai.cost_per_1k_output),
        (5, 15)
    );
    let local = BackendConfig::local("llama3", "http://localhost:11434");
    assert_eq!(local.provider, BackendProvider::Local);
    assert_eq!(local.endpoint.as_deref(), Some("http://localhost:11434"));
    assert!(local.is_free());
    let oss = BackendConfig::gpt_oss("gpt-oss-20b", "http://127.0.0.1:8000");
    assert_eq!(oss.provider, BackendProvider::GptOss);
    assert!(oss.is_free());
    assert!(!oss.clone().with_prices(1, 2).is_free());
}

#[test]
fn spec_cost_example_is_105_sats() {
    let config = BackendConfig::codex("sonnet-4");
    assert_eq!(config.calculate_cost(10_000, 5_000), 105);
    assert_eq!(config.calculate_cost_msats(10_000, 5_000), 105_000);
}

#[test]
fn cost_rounds_up_never_down() {
    let config = BackendConfig::codex("m");
    assert_eq!(config.calculate_cost_msats(333, 0), 999);
    assert_eq!(config.calculate_cost(333, 0), 1);
    assert_eq!(config.calculate_cost(1, 0), 1);
    assert_eq!(config.calculate_cost(0, 1), 1);
    assert_eq!(config.calculate_cost(0, 0), 0);
    assert_eq!(config.calculate_cost(334, 0), 2);
    // Rounding happens once on the sum, not on each part.
    assert_eq!(config.calculate_cost(100, 100), 2);
}

#[test]
fn cost_saturates_instead_of_overflowing() {
    let config = BackendConfig::openai("m").with_prices(u64::MAX, u64::MAX);
    assert_eq!(config.calculate_cost_msats(u64::MAX, u64::MAX), u64::MAX);
    assert_eq!(config.calculate_cost(2, 0), u64::MAX);
}

#[test]
fn spec_routing_example() {
    let router = spec_router();
    assert_eq!(
        router.get_backend("oracle").unwrap().provider,
        BackendProvider::OpenAI
    );
    assert_eq!(
        router.get_backend("sisyphus").unwrap().provider,
        BackendProvider::Codex
    );
    assert_eq!(
        router.get_backend("explore").unwrap().provider,
        BackendProvider::Local
    );
    let enabled: Vec<_> = router.list_enabled().iter().map(|b| b.provider).collect();
    assert_eq!(
        enabled,
        [
            BackendProvider::Codex,
            BackendProvider::OpenAI,
            BackendProvider::Local
        ]
    );
}

#[test]
fn disabled_routed_backend_falls_to_default() {
    let router = spec_router().add_backend(BackendConfig::openai("gpt-4").with_enabled(false));
    assert_eq!(
        router.get_backend("oracle").unwrap().provider,
        BackendProvider::Codex
    );
    assert_eq!(router.list_enabled().len(), 2);
}

#[test]
fn route_to_missing_provider_falls_to_default() {
    let router = spec_router().route_agent("oracle", BackendProvider::GptOss);
    assert_eq!(
        router.get_backend("oracle").unwrap().provider,
        BackendProvider::Codex
    );
    assert_eq!(router.routed_provider("oracle"), BackendProvider::GptOss);
}

#[test]
fn nothing_enabled_is_none_with_a_clear_error() {
    let router = MultiBackendRouter::new(BackendProvider::Codex)
        .add_backend(BackendConfig::codex("m").with_enabled(false))
        .add_backend(BackendConfig::openai("m").with_enabled(false))
        .route_agent("oracle", BackendProvider::OpenAI);
    assert!(router.get_backend("oracle").is_none());
    assert!(router.fallback_chain("oracle").is_empty());
    let err = router.route("oracle").unwrap_err();
    assert_eq!(
        err.to_string(),
        "agent `oracle` has no enabled backend and no default is enabled; add or enable a `openai` backend or the default `codex` one"
    );
    // Another enabled backend is not used silently by `get_backend`: only the route and default.
    let router = router.add_backend(BackendConfig::local("m", "http://x"));
    assert!(router.get_backend("oracle").is_none());
    assert_eq!(router.fallback_chain("oracle").len(), 1);
}

#[test]
fn adding_the_same_provider_replaces_in_place() {
    let router = spec_router().add_backend(BackendConfig::codex("opus"));
    assert_eq!(router.backends().len(), 3);
    assert_eq!(router.backends()[0].model, "opus");
    assert_eq!(
        router.backend(BackendProvider::Codex).unwrap().model,
        "opus"
    );
}

#[test]
fn fallback_chain_order() {
    let router = spec_router();
    let order = |agent| -> Vec<_> {
        router
            .fallback_chain(agent)
            .iter()
            .map(|b| b.provider)
            .collect()
    };
    assert_eq!(
        order("oracle"),
        [
            BackendProvider::OpenAI,
            BackendProvider::Codex,
            BackendProvider::Local
        ]
    );
    assert_eq!(
        order("explore"),
        [
            BackendProvider::Local,
            BackendProvider::Codex,
            BackendProvider::OpenAI
        ]
    );
    assert_eq!(
        order("sisyphus"),
        [
            BackendProvider::Codex,
            BackendProvider::OpenAI,
            BackendProvider::Local
        ]
    );
    let router = router.add_backend(BackendConfig::codex("m").with_enabled(false));
    let order: Vec<_> = router
        .fallback_chain("sisyphus")
        .iter()
        .map(|b| b.provider)
        .collect();
    assert_eq!(order, [BackendProvider::OpenAI, BackendProvider::Local]);
}

#[test]
fn backend_config_serde() {
    let json = r#"{"provider":"gpt-oss","model":"m","cost_per_1k_input":1,"cost_per_1k_output":2}"#;
    let config: BackendConfig = serde_json::from_str(json).unwrap();
    assert_eq!(
        config,
        BackendConfig::new(BackendProvider::GptOss, "m", 1, 2)
    );
    let back: BackendConfig =
        serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
    assert_eq!(back, config);
    assert!(
        serde_json::from_str::<BackendConfig>(
            r#"{"provider":"codex","model":"m","cost_per_1k_input":-1,"cost_per_1k_output":2}"#
        )
        .is_err()
    );
    assert!(serde_json::from_str::<BackendConfig>(r#"{"provider":"codex","model":"m","cost_per_1k_input":1,"cost_per_1k_output":2,"price":3}"#).is_err());
}

fn provider() -> impl Strategy<Value = BackendProvider> {
    (0usize..5).prop_map(|i| BackendProvider::ALL[i])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// A non-zero usage at a non-zero price is never free.
    #[test]
    fn non_zero_usage_at_non_zero_price_is_never_free(
        input in any::<u64>(), output in any::<u64>(),
        pin in any::<u64>(), pout in any::<u64>(),
    ) {
        let config = BackendConfig::codex("m").with_prices(pin, pout);
        let cost = config.calculate_cost(input, output);
        if (input > 0 && pin > 0) || (output > 0 && pout > 0) {
            prop_assert!(cost >= 1);
        }
        if (input == 0 || pin == 0) && (output == 0 || pout == 0) {
            prop_assert_eq!(cost, 0);
        }
    }

    /// The cost is the exact product rounded up, saturated; it never wraps or panics.
    #[test]
    fn cost_is_exact_then_rounded_up(
        input in any::<u64>(), output in any::<u64>(),
        pin in any::<u64>(), pout in any::<u64>(),
    ) {
        let config = BackendConfig::codex("m").with_prices(pin, pout);
        let exact = (u128::from(input) * u128::from(pin)).saturating_add(u128::from(output) * u128::from(pout));
        let msats = exact.min(u128::from(u64::MAX));
        prop_assert_eq!(u128::from(config.calculate_cost_msats(input, output)), msats);
        let sats = if msats == u128::from(u64::MAX) { u128::from(u64::MAX) } else { msats.div_ceil(1_000) };
        prop_assert_eq!(u128::from(config.calculate_cost(input, output)), sats);
    }

    /// More tokens never cost less.
    #[test]
    fn cost_is_monotonic(input in 0u64..1 << 40, extra in 0u64..1 << 20, pin in 0u64..1 << 20) {
        let config = BackendConfig::codex("m").with_prices(pin, 7);
        prop_assert!(config.calculate_cost(input + extra, 3) >= config.calculate_cost(input, 3));
    }

    /// `get_backend` is the head of `fallback_chain`, and the chain holds only enabled backends,
    /// each once.
    #[test]
    fn get_backend_heads_the_chain(
        default in provider(),
        backends in proptest::collection::vec((provider(), any::<bool>()), 0..8),
        route in proptest::option::of(provider()),
    ) {
        let mut router = MultiBackendRouter::new(default);
        for (p, enabled) in &backends {
            router = router.add_backend(BackendConfig::new(*p, "m", 1, 1).with_enabled(*enabled));
        }
        if let Some(p) = route {
            router = router.route_agent("a", p);
        }
        let chain = router.fallback_chain("a");
        let head = router.get_backend("a");
        if let Some(h) = head {
            prop_assert_eq!(chain.first().map(|b| b.provider), Some(h.provider));
        }
        prop_assert!(chain.iter().all(|b| b.enabled));
        let mut seen: Vec<_> = chain.iter().map(|b| b.provider).collect();
        seen.sort();
        seen.dedup();
        prop_assert_eq!(seen.len(), chain.len());
        prop_assert_eq!(chain.len(), router.list_enabled().len());
    }
}
