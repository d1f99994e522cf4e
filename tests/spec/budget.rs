//! "Cost Tracking & Budget Enforcement".

use std::time::{SystemTime, UNIX_EPOCH};

/// The spec's `now()`: the current Unix time in seconds. If midnight UTC is a few seconds away it
/// waits it out first, so that "today" cannot change between the record and the check.
fn now() -> u64 {
    let secs = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let to_midnight = 86_400 - secs() % 86_400;
    if to_midnight <= 3 {
        std::thread::sleep(std::time::Duration::from_secs(to_midnight + 1));
    }
    secs()
}

#[test]
fn budget_config_fields() -> Result<(), Box<dyn std::error::Error>> {
    use agent_orchestrator::BudgetConfig;
    // --- spec: BudgetConfig struct
    let config = BudgetConfig {
        daily_limit_sats: 100_000, // Max per day
        session_limit_sats: 10_000, // Max per session
        warn_threshold_pct: 80,    // Warn at this % (e.g., 80)
    };
    // --- end spec
    assert_eq!(config, BudgetConfig::default());
    Ok(())
}

#[test]
fn cost_tracker_usage() -> Result<(), Box<dyn std::error::Error>> {
    let session_start = now() - 60;

    // --- spec: CostTracker
    use agent_orchestrator::{CostTracker, BudgetConfig, CostRecord, BackendProvider};

    let tracker = CostTracker::new()
        .with_default_budget(BudgetConfig {
            daily_limit_sats: 100_000,
            session_limit_sats: 10_000,
            warn_threshold_pct: 80,
        })
        .with_budget("expensive-agent", BudgetConfig {
            daily_limit_sats: 500_000,
            session_limit_sats: 50_000,
            warn_threshold_pct: 90,
        });

    // Record cost
    tracker.record(CostRecord {
        agent_name: "sisyphus".to_string(),
        backend: BackendProvider::Codex,
        input_tokens: 10_000,
        output_tokens: 5_000,
        cost_sats: 105,
        timestamp: now(),
    })?;

    // Check totals
    let session_total = tracker.session_total("sisyphus", session_start);
    let daily_total = tracker.daily_total("sisyphus");

    // Check budget status
    let status = tracker.check_budget("sisyphus", session_start);
    // --- end spec

    assert_eq!(session_total, 105);
    assert_eq!(daily_total, 105);
    assert_eq!(status, agent_orchestrator::BudgetStatus::Ok);
    assert_eq!(tracker.budget_for("expensive-agent").session_limit_sats, 50_000);
    assert_eq!(tracker.budget_for("sisyphus").session_limit_sats, 10_000);
    // A session that starts after the record does not see it; the day does.
    assert_eq!(tracker.session_total("sisyphus", now() + 10), 0);
    Ok(())
}

#[test]
fn budget_status_variants() {
    use agent_orchestrator::{BudgetConfig, BudgetStatus, CostRecord, CostTracker, BackendProvider};
    // --- spec: BudgetStatus
    let describe = |status: BudgetStatus| match status {
        BudgetStatus::Ok => "ok".to_string(),
        BudgetStatus::Warning { session_pct, daily_pct } => format!("warning {session_pct}/{daily_pct}"),
        BudgetStatus::SessionExceeded => "session exceeded".to_string(),
        BudgetStatus::DailyExceeded => "daily exceeded".to_string(),
    };
    // --- end spec
    let tracker = CostTracker::new().with_default_budget(BudgetConfig {
        daily_limit_sats: 1_000,
        session_limit_sats: 100,
        warn_threshold_pct: 80,
    });
    let start = now() - 10;
    let spend = |cost| {
        tracker
            .record(CostRecord {
                agent_name: "a".into(),
                backend: BackendProvider::Codex,
                input_tokens: 1,
                output_tokens: 1,
                cost_sats: cost,
                timestamp: now(),
            })
            .unwrap();
        describe(tracker.check_budget("a", start))
    };
    assert_eq!(describe(tracker.check_budget("a", start)), "ok");
    assert_eq!(spend(85), "warning 85/8");
    assert_eq!(spend(15), "session exceeded");
    assert_eq!(spend(900), "daily exceeded");
}
