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

/// A root cause, as an I/O or SQLite error would be.
#[derive(Debug, thiserror::Error)]
#[error("disk full")]
struct DiskFull;

/// A context over a cause, as every error of this workspace is written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the ledger")]
struct WriteLedger(#[source] DiskFull);

/// A context over a context.
#[derive(Debug, thiserror::Error)]
#[error("the spend was not recorded")]
struct Settle(#[source] WriteLedger);

/// A wrapper that forwards its cause's message and source.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct Transparent(Settle);

/// A wrapper that repeats its cause's message and also names it as its source.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Repeats(#[source] Settle);

/// An error of the old style: it prints its cause in its message and names it as its source.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the store: {0}")]
struct Interpolates(#[source] WriteLedger);

/// An error whose message says nothing, over a cause that does.
#[derive(Debug, thiserror::Error)]
#[error("")]
struct Silent(#[source] DiskFull);

#[test]
fn a_report_without_a_cause_is_the_message() {
    assert_eq!(Report::new(&DiskFull).to_string(), "disk full");
}

#[test]
fn a_report_prints_every_cause_once_in_order() {
    let error = Settle(WriteLedger(DiskFull));
    assert_eq!(error.to_string(), "the spend was not recorded");
    assert_eq!(
        Report::new(&error).to_string(),
        "the spend was not recorded: cannot write the ledger: disk full"
    );
}

#[test]
fn a_report_does_not_repeat_a_forwarded_message() {
    let expected = "the spend was not recorded: cannot write the ledger: disk full";
    let transparent = Transparent(Settle(WriteLedger(DiskFull)));
    assert_eq!(Report::new(&transparent).to_string(), expected);
    let repeats = Repeats(Settle(WriteLedger(DiskFull)));
    assert_eq!(Report::new(&repeats).to_string(), expected);
}

#[test]
fn a_report_does_not_repeat_a_cause_already_in_the_message() {
    let error = Interpolates(WriteLedger(DiskFull));
    assert_eq!(
        Report::new(&error).to_string(),
        "cannot open the store: cannot write the ledger: disk full"
    );
}

#[test]
fn a_report_leaves_out_empty_messages() {
    assert_eq!(Report::new(&Silent(DiskFull)).to_string(), "disk full");
}

#[test]
fn a_report_keeps_a_cause_that_only_looks_like_the_end_of_the_message() {
    #[derive(Debug, thiserror::Error)]
    #[error("disk")]
    struct Disk;
    #[derive(Debug, thiserror::Error)]
    #[error("cannot write to the ramdisk")]
    struct Write(#[source] Disk);
    assert_eq!(
        Report::new(&Write(Disk)).to_string(),
        "cannot write to the ramdisk: disk"
    );
}

#[test]
fn a_report_reads_a_boxed_dynamic_chain() {
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(Settle(WriteLedger(DiskFull)));
    assert_eq!(
        Report::new(&*boxed).to_string(),
        "the spend was not recorded: cannot write the ledger: disk full"
    );
}
