use proptest::prelude::*;

use super::*;

#[test]
fn provider_strings_match_decisions() {
    let expected = ["codex", "openai", "gpt-oss", "local", "dvm"];
    for (provider, name) in BackendProvider::ALL.into_iter().zip(expected) {
        assert_eq!(provider.as_str(), name);
        assert_eq!(provider.to_string(), name);
        assert_eq!(name.parse::<BackendProvider>(), Ok(provider));
        assert_eq!(
            serde_json::to_string(&provider).unwrap(),
            format!("\"{name}\"")
        );
        assert_eq!(
            serde_json::from_str::<BackendProvider>(&format!("\"{name}\"")).unwrap(),
            provider
        );
    }
}

#[test]
fn unknown_provider_is_a_clear_error() {
    let err = "anthropic".parse::<BackendProvider>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown backend provider `anthropic`: expected one of codex, openai, gpt-oss, local, dvm"
    );
    assert!(serde_json::from_str::<BackendProvider>("\"OpenAI\"").is_err());
}

#[test]
fn usage_total_saturates() {
    assert_eq!(TokenUsage::new(3, 4).total(), 7);
    assert_eq!(TokenUsage::new(u64::MAX, 1).total(), u64::MAX);
    assert!(TokenUsage::default().is_zero());
    assert!(!TokenUsage::new(0, 1).is_zero());
}

#[test]
fn msats_round_up_to_sats() {
    assert_eq!(Msats(0).to_sats_ceil(), 0);
    assert_eq!(Msats(1).to_sats_ceil(), 1);
    assert_eq!(Msats(999).to_sats_ceil(), 1);
    assert_eq!(Msats(1_000).to_sats_ceil(), 1);
    assert_eq!(Msats(1_001).to_sats_ceil(), 2);
    assert_eq!(Msats(1_001).to_sats_floor(), 1);
    assert_eq!(Msats::MAX.to_sats_ceil(), u64::MAX.div_ceil(1_000));
    assert_eq!(Msats::from_sats(7), Msats(7_000));
    assert_eq!(Msats::from_sats(u64::MAX), Msats::MAX);
}

#[test]
fn money_never_wraps() {
    assert_eq!(Msats::MAX + Msats(1), Msats::MAX);
    assert_eq!(Msats(1).saturating_sub(Msats(2)), Msats::ZERO);
    assert_eq!(Msats::MAX.checked_add(Msats(1)), None);
    assert_eq!(cost_msats(u64::MAX, 2), Msats::MAX);
    assert_eq!(cost_msats(333, 3), Msats(999));
}

#[test]
fn test_clock_is_shared_between_clones() {
    let clock = TestClock::new(100);
    let handle = clock.clone();
    handle.advance(50);
    assert_eq!(clock.now(), Ok(150));
    handle.set(10);
    assert_eq!(clock.now(), Ok(10));
    handle.set(u64::MAX - 1);
    handle.advance(10);
    assert_eq!(clock.now(), Ok(u64::MAX));
}

#[test]
fn system_clock_reads_after_2020() {
    assert!(SystemClock.now().unwrap() > 1_577_836_800);
}

#[test]
fn utc_days_are_half_open() {
    // 2026-11-29T00:00:00Z is 1795910400.
    let midnight = 1_795_910_400;
    assert_eq!(utc_day_start(midnight), midnight);
    assert_eq!(utc_day_start(midnight + 86_399), midnight);
    assert_eq!(utc_day_start(midnight - 1), midnight - 86_400);
    assert_eq!(utc_day_end(midnight), midnight + 86_400);
    assert_eq!(utc_day_end(u64::MAX), u64::MAX);
}

#[test]
fn agent_names_are_checked() {
    for good in ["oracle", "expensive-agent", "a", "team.alpha:worker_1@host"] {
        assert_eq!(AgentName::new(good).unwrap().as_str(), good);
    }
    assert_eq!(AgentName::new(""), Err(AgentNameError::Empty));
    assert_eq!(
        AgentName::new("x".repeat(129)),
        Err(AgentNameError::TooLong { len: 129 })
    );
    let err = AgentName::new("evil agent").unwrap_err();
    assert!(matches!(
        err,
        AgentNameError::InvalidChar { found: ' ', .. }
    ));
    assert!(err.to_string().contains("`evil agent`"));
    assert!(AgentName::new("oracle\u{200b}").is_err());
    assert!(AgentName::new("x".repeat(128)).is_ok());
}

#[test]
fn agent_name_serde_rejects_bad_names() {
    let name: AgentName = serde_json::from_str("\"oracle\"").unwrap();
    assert_eq!(serde_json::to_string(&name).unwrap(), "\"oracle\"");
    assert!(serde_json::from_str::<AgentName>("\"\\n\"").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn non_zero_msats_never_round_to_free(msats in 1u64..) {
        prop_assert!(Msats(msats).to_sats_ceil() >= 1);
        prop_assert!(Msats(msats).to_sats_ceil() * 1_000 >= msats.min(u64::MAX / 1_000 * 1_000));
    }

    #[test]
    fn cost_is_exact_or_saturated(tokens in any::<u64>(), price in any::<u64>()) {
        let exact = u128::from(tokens) * u128::from(price);
        let got = u128::from(cost_msats(tokens, price).0);
        prop_assert_eq!(got, exact.min(u128::from(u64::MAX)));
    }

    #[test]
    fn provider_round_trips(i in 0usize..5) {
        let p = BackendProvider::ALL[i];
        prop_assert_eq!(p.as_str().parse::<BackendProvider>(), Ok(p));
    }
}
