//! The conformance suite every [`Ledger`] runs.
//!
//! An implementation calls [`run_all`] from one of its tests with a function that makes a fresh,
//! empty ledger. Each check panics with a message naming the broken promise.
//!
//! ```
//! # #[cfg(feature = "conformance")] {
//! ao_budget::conformance::run_all(ao_budget::MemoryLedger::new);
//! # }
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a conformance failure is a panic, by design"
)]

use std::sync::Arc;

use ao_types::BackendProvider;

use crate::{CostRecord, Hold, Ledger, MAX_STORED_AMOUNT};

fn record(agent: &str, backend: BackendProvider, cost: u64, timestamp: u64) -> CostRecord {
    CostRecord {
        agent_name: agent.to_owned(),
        backend,
        input_tokens: cost * 3 + 1,
        output_tokens: cost * 2,
        cost_sats: cost,
        timestamp,
    }
}

/// Runs every check against fresh ledgers made by `fresh`.
pub fn run_all<L, F>(fresh: F)
where
    L: Ledger + 'static,
    F: Fn() -> L,
{
    empty_ledger_loads_nothing(fresh());
    records_round_trip_exactly(fresh());
    ranges_are_half_open_and_ordered(fresh());
    agent_ranges_filter_by_agent(fresh());
    concurrent_appends_all_land(fresh());
    health_check_passes_on_a_working_ledger(fresh());
    holds_round_trip_and_settle_in_one_step(fresh());
}

/// A new ledger holds nothing.
pub fn empty_ledger_loads_nothing(ledger: impl Ledger) {
    assert!(
        ledger.load_range(0, u64::MAX).unwrap().is_empty(),
        "a fresh ledger must be empty"
    );
}

/// Every field of every record comes back as it was appended, for every provider and for the
/// largest storable amounts.
pub fn records_round_trip_exactly(ledger: impl Ledger) {
    let mut records: Vec<CostRecord> = BackendProvider::ALL
        .iter()
        .enumerate()
        .map(|(i, p)| record("round-trip", *p, i as u64 * 7, 1_000 + i as u64))
        .collect();
    records.push(CostRecord {
        agent_name: "max.agent:x@y".into(),
        backend: BackendProvider::Dvm,
        input_tokens: MAX_STORED_AMOUNT / 2,
        output_tokens: MAX_STORED_AMOUNT / 2,
        cost_sats: MAX_STORED_AMOUNT,
        timestamp: MAX_STORED_AMOUNT - 1,
    });
    records.push(record("zero", BackendProvider::Local, 0, 0));
    ledger.append(&records).unwrap();
    let mut loaded = ledger.load_range(0, u64::MAX).unwrap();
    let mut expected = records.clone();
    loaded.sort_by(|a, b| (a.timestamp, &a.agent_name).cmp(&(b.timestamp, &b.agent_name)));
    expected.sort_by(|a, b| (a.timestamp, &a.agent_name).cmp(&(b.timestamp, &b.agent_name)));
    assert_eq!(loaded, expected, "records must round-trip exactly");
}

/// `load_range(from, until)` returns `from <= timestamp < until`, ordered by timestamp and then
/// by append order.
pub fn ranges_are_half_open_and_ordered(ledger: impl Ledger) {
    ledger
        .append(&[
            record("a", BackendProvider::Codex, 1, 30),
            record("a", BackendProvider::Codex, 2, 10),
        ])
        .unwrap();
    ledger
        .append(&[record("b", BackendProvider::OpenAI, 3, 20)])
        .unwrap();
    ledger
        .append(&[record("a", BackendProvider::Codex, 4, 20)])
        .unwrap();
    ledger
        .append(&[record("a", BackendProvider::Codex, 5, 40)])
        .unwrap();
    let costs = |from, until| -> Vec<u64> {
        ledger
            .load_range(from, until)
            .unwrap()
            .iter()
            .map(|r| r.cost_sats)
            .collect()
    };
    assert_eq!(
        costs(0, u64::MAX),
        [2, 3, 4, 1, 5],
        "ordered by timestamp, then append order"
    );
    assert_eq!(
        costs(20, 40),
        [3, 4, 1],
        "`from` is included and `until` excluded"
    );
    assert_eq!(costs(11, 20), Vec::<u64>::new(), "an empty range is empty");
    assert_eq!(costs(40, 40), Vec::<u64>::new(), "`from == until` is empty");
}

/// `load_agent_range` returns only the named agent's records.
pub fn agent_ranges_filter_by_agent(ledger: impl Ledger) {
    ledger
        .append(&[
            record("a", BackendProvider::Codex, 1, 10),
            record("b", BackendProvider::Codex, 2, 10),
            record("ab", BackendProvider::Codex, 3, 11),
            record("a", BackendProvider::Codex, 4, 12),
        ])
        .unwrap();
    let got: Vec<u64> = ledger
        .load_agent_range("a", 0, u64::MAX)
        .unwrap()
        .iter()
        .map(|r| r.cost_sats)
        .collect();
    assert_eq!(got, [1, 4], "only agent `a`, no prefix matches");
    assert!(
        ledger
            .load_agent_range("nobody", 0, u64::MAX)
            .unwrap()
            .is_empty()
    );
    assert_eq!(ledger.load_agent_range("a", 11, u64::MAX).unwrap().len(), 1);
}

/// Appends from many threads at once all land, none twice.
pub fn concurrent_appends_all_land<L: Ledger + 'static>(ledger: L) {
    let ledger = Arc::new(ledger);
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let ledger = &ledger;
            scope.spawn(move || {
                for i in 0..50u64 {
                    ledger
                        .append(&[record(&format!("t{t}"), BackendProvider::Codex, i, 100 + i)])
                        .unwrap();
                }
            });
        }
    });
    let all = ledger.load_range(0, u64::MAX).unwrap();
    assert_eq!(all.len(), 200, "every concurrent append lands exactly once");
    for t in 0..4 {
        let sum: u64 = ledger
            .load_agent_range(&format!("t{t}"), 0, u64::MAX)
            .unwrap()
            .iter()
            .map(|r| r.cost_sats)
            .sum();
        assert_eq!(sum, (0..50).sum::<u64>());
    }
}

/// A working ledger passes its health check.
pub fn health_check_passes_on_a_working_ledger(ledger: impl Ledger) {
    ledger.health_check().unwrap();
}

/// A hold comes back exactly until it is settled; settling removes it and appends its record
/// together; removing a hold that is not there is not an error; settling with no hold appends.
pub fn holds_round_trip_and_settle_in_one_step(ledger: impl Ledger) {
    assert!(
        ledger.holds().unwrap().is_empty(),
        "a fresh ledger holds nothing"
    );
    let hold = |id: &str, created_at: u64| Hold {
        id: id.to_owned(),
        agent_name: "oracle".to_owned(),
        backend: BackendProvider::GptOss,
        input_tokens: 1_234,
        output_tokens: MAX_STORED_AMOUNT / 2,
        cost_sats: MAX_STORED_AMOUNT,
        created_at,
    };
    ledger.hold(&hold("b", 20)).unwrap();
    ledger.hold(&hold("a", 10)).unwrap();
    assert_eq!(
        ledger.holds().unwrap(),
        vec![hold("a", 10), hold("b", 20)],
        "holds come back exactly, oldest first"
    );
    let settled = record("oracle", BackendProvider::GptOss, 7, 15);
    ledger
        .settle_holds(
            &["a".to_owned(), "gone".to_owned()],
            std::slice::from_ref(&settled),
        )
        .unwrap();
    assert_eq!(ledger.holds().unwrap(), vec![hold("b", 20)]);
    assert_eq!(
        ledger.load_range(0, u64::MAX).unwrap(),
        vec![settled.clone()]
    );
    let other = record("oracle", BackendProvider::Local, 3, 16);
    ledger
        .settle_holds(&[], std::slice::from_ref(&other))
        .unwrap();
    assert_eq!(
        ledger.load_range(0, u64::MAX).unwrap(),
        vec![settled, other],
        "settling with no hold appends"
    );
    ledger.settle_holds(&["b".to_owned()], &[]).unwrap();
    assert!(
        ledger.holds().unwrap().is_empty(),
        "a release removes the hold"
    );
    assert_eq!(hold("a", 10).charge().cost_sats, MAX_STORED_AMOUNT);
}
