//! The `dvm` backend through the orchestrator, configured from TOML: a relay on loopback, a
//! simulated DVM and NWC wallet service, the SQLite database in a temporary directory. The bid
//! is reserved before a job is published; what was paid is what is charged.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ao_audit::AuditLog as _;
use ao_dvm::sim::{DvmScript, SimDvm, SimNetwork, SimWallet, WalletScript};
use ao_dvm::{NwcWallet, Wallet};
use ao_orchestrator::{Config, Orchestrator, OrchestratorError};
use ao_routing::http::{ChatMessage, ChatRequest};
use ao_signer::Relay;
use ao_store::Store;

const PRICE_MSATS: u64 = 21_000;
const FEE_MSATS: u64 = 500;
const BALANCE_MSATS: u64 = 10_000_000;
/// What one job costs, rounded up: 21.5 sats.
const JOB_SATS: u64 = 22;
const BID_SATS: u64 = 30;
/// What a call reserves: the bid and a 1-sat fee allowance.
const RESERVED_SATS: u64 = 31;

struct World {
    relay: Relay,
    network: SimNetwork,
    wallet: SimWallet,
    dvm: SimDvm,
    dir: tempfile::TempDir,
}

async fn world(script: DvmScript) -> World {
    let relay = Relay::start("127.0.0.1:0".parse().unwrap(), 100_000)
        .await
        .unwrap();
    let network = SimNetwork::new();
    let wallet = SimWallet::start(relay.url(), network.clone(), BALANCE_MSATS, FEE_MSATS)
        .await
        .unwrap();
    let dvm = SimDvm::start(relay.url(), network.clone(), PRICE_MSATS, script)
        .await
        .unwrap();
    World {
        relay,
        network,
        wallet,
        dvm,
        dir: tempfile::tempdir().unwrap(),
    }
}

/// The configuration, on the PostgreSQL database at `database` when given.
fn config_on(
    dir: &Path,
    world: &World,
    daily_sats: u64,
    timeout_secs: u64,
    database: Option<&str>,
) -> Config {
    let database = database.map_or_else(String::new, |url| {
        format!("database = {{ url = \"{url}\" }}")
    });
    Config::from_toml(&format!(
        r#"
data_dir = "{dir}"
default_backend = "dvm"
{database}

[default_budget]
daily_limit_sats = {daily_sats}
session_limit_sats = {daily_sats}

[[backends]]
provider = "dvm"
model = "sim-llm"
relays = ["{relay}"]
service_pubkey = "{dvm}"
max_bid_sats = {BID_SATS}
cost_per_1k_input = 0
cost_per_1k_output = 0
timeout_secs = {timeout_secs}

[agents.bot]
autonomy = "fully-autonomous"
"#,
        dir = dir.display(),
        relay = world.relay.url(),
        dvm = world.dvm.public_key().to_hex(),
    ))
    .unwrap()
}

fn open(world: &World, daily_sats: u64, timeout_secs: u64) -> (Orchestrator, Store) {
    open_on(world, daily_sats, timeout_secs, None)
}

fn open_on(
    world: &World,
    daily_sats: u64,
    timeout_secs: u64,
    database: Option<&str>,
) -> (Orchestrator, Store) {
    let wallet = NwcWallet::from_uri(world.wallet.uri(), "test", Duration::from_secs(5)).unwrap();
    let config = config_on(world.dir.path(), world, daily_sats, timeout_secs, database);
    let wallet: Arc<dyn Wallet> = Arc::new(wallet);
    Orchestrator::from_config_with_wallet(&config, Some(wallet)).unwrap()
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest::new(vec![ChatMessage::new("user", text)]).with_max_tokens(64)
}

async fn spent(orchestrator: &Orchestrator) -> u64 {
    orchestrator.drain().await;
    orchestrator.spend("bot").await.unwrap().sats
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_and_answered_job_is_charged_what_was_paid() {
    let world = world(DvmScript::Honest).await;
    let (orchestrator, _store) = open(&world, 1_000, 20);
    let done = orchestrator
        .complete("bot", ask("Hello DVM"))
        .await
        .unwrap();
    assert!(done.response.content.starts_with("[simulated DVM]"));
    assert_eq!(done.cost_sats, JOB_SATS, "amount and fee, rounded up");
    assert_eq!(spent(&orchestrator).await, JOB_SATS);
    assert_eq!(
        world.wallet.balance_msats(),
        BALANCE_MSATS - PRICE_MSATS - FEE_MSATS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_jobs_never_pay_past_the_budget() {
    let world = world(DvmScript::Honest).await;
    let budget_sats = 100;
    let (orchestrator, _store) = open(&world, budget_sats, 20);
    let calls = (0..20).map(|i| {
        let orchestrator = orchestrator.clone();
        tokio::spawn(async move { orchestrator.complete("bot", ask(&format!("job {i}"))).await })
    });
    let results = futures_util::future::join_all(calls).await;
    let answered = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Ok(Err(OrchestratorError::Budget(_)))))
        .count();
    let paid_msats = BALANCE_MSATS - world.wallet.balance_msats();
    eprintln!("{answered} answered, {refused} refused by the budget, {paid_msats} msats paid");
    assert!(answered >= 1, "no job was answered");
    assert!(refused >= 1, "the budget refused nothing");
    assert_eq!(answered + refused, 20, "{results:?}");
    assert_eq!(
        world.wallet.payments().len(),
        answered,
        "one payment per answer"
    );
    assert!(
        paid_msats <= budget_sats * 1_000,
        "paid {paid_msats} msats past a {budget_sats}-sat budget"
    );
    let spend = spent(&orchestrator).await;
    assert_eq!(spend, JOB_SATS * answered as u64);
    assert!(spend <= budget_sats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_is_released() {
    let world = world(DvmScript::Silent).await;
    let (orchestrator, _store) = open(&world, 1_000, 2);
    let error = orchestrator
        .complete("bot", ask("Anyone?"))
        .await
        .unwrap_err();
    assert!(matches!(error, OrchestratorError::Backend(_)), "{error}");
    assert_eq!(spent(&orchestrator).await, 0);
    assert!(world.wallet.payments().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_failure_is_released() {
    let world = world(DvmScript::Honest).await;
    world.wallet.script(WalletScript::Fail(
        nostr::nips::nip47::ErrorCode::InsufficientBalance,
    ));
    let (orchestrator, _store) = open(&world, 1_000, 20);
    let error = orchestrator
        .complete("bot", ask("Hello"))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("balance is too low")
            || format!("{error:?}").contains("balance is too low"),
        "{error:?}"
    );
    assert_eq!(spent(&orchestrator).await, 0);
    assert_eq!(world.wallet.balance_msats(), BALANCE_MSATS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_without_a_result_is_charged_and_audited() {
    let world = world(DvmScript::PaidThenSilent).await;
    let (orchestrator, store) = open(&world, 1_000, 5);
    let error = orchestrator
        .complete("bot", ask("Hello"))
        .await
        .unwrap_err();
    assert!(format!("{error:?}").contains("PaidUnanswered"), "{error:?}");
    assert_eq!(
        spent(&orchestrator).await,
        JOB_SATS,
        "charged what was paid, not the bid"
    );
    let entries = store.entries(1, 1_000).unwrap();
    let completion = entries
        .iter()
        .rev()
        .find(|e| e.kind == "completion")
        .expect("the call was audited");
    let detail: serde_json::Value = serde_json::from_str(&completion.detail).unwrap();
    assert_eq!(detail["cost_sats"], JOB_SATS);
    assert_eq!(detail["backend"], "dvm");
    assert!(
        detail["error"].as_str().unwrap().contains("sent no result"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_between_payment_and_result_does_not_pay_twice() {
    let world = world(DvmScript::DelayedResult(Duration::from_secs(4))).await;
    let (orchestrator, store) = open(&world, 1_000, 20);
    let call = {
        let orchestrator = orchestrator.clone();
        tokio::spawn(async move { orchestrator.complete("bot", ask("Survive a restart")).await })
    };
    for _ in 0..400 {
        if !world.wallet.payments().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(world.wallet.payments().len(), 1, "the job was paid");
    // The process goes away after paying, before the result.
    call.abort();
    let _ = call.await;
    orchestrator.drain().await;
    drop(orchestrator);
    drop(store);

    let (orchestrator, _store) = open(&world, 1_000, 20);
    let done = orchestrator
        .complete("bot", ask("Survive a restart"))
        .await
        .unwrap();
    assert!(done.response.content.contains("Survive a restart"));
    assert_eq!(world.wallet.payments().len(), 1, "paid twice");
    assert_eq!(
        world.wallet.balance_msats(),
        BALANCE_MSATS - PRICE_MSATS - FEE_MSATS
    );
    assert_eq!(
        world.dvm.jobs_seen(),
        1,
        "the job was taken up, not published anew"
    );
    // The call cut off after dispatch is charged what it reserved, as every call dropped while a backend
    // works; the one that took the job up is charged what the job cost. Never less than paid.
    assert_eq!(done.cost_sats, JOB_SATS);
    assert_eq!(spent(&orchestrator).await, RESERVED_SATS + JOB_SATS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_pays_an_invoice_within_budget_and_only_once() {
    let world = world(DvmScript::Silent).await;
    let (orchestrator, _store) = open(&world, 50, 20);
    let bolt11 = world.network.invoice(10_000).unwrap();
    let paid = orchestrator.pay_invoice("bot", &bolt11).await.unwrap();
    assert_eq!(paid.cost_sats, 11, "10 sats and a 0.5 sat fee, rounded up");
    assert_eq!(spent(&orchestrator).await, 11);
    let again = orchestrator.pay_invoice("bot", &bolt11).await.unwrap_err();
    assert!(
        matches!(again, OrchestratorError::AlreadyPaid { .. }),
        "{again}"
    );
    // 40 sats and its fee allowance do not fit in what is left of 50.
    let dear = world.network.invoice(40_000).unwrap();
    let refused = orchestrator.pay_invoice("bot", &dear).await.unwrap_err();
    assert!(matches!(refused, OrchestratorError::Budget(_)), "{refused}");
    assert_eq!(world.wallet.payments().len(), 1);
    assert_eq!(spent(&orchestrator).await, 11, "a refusal reserves nothing");
}

/// A PostgreSQL schema of its own, or `None` (said loudly) when no server is there outside CI.
fn postgres() -> Option<ao_store::pg::ScratchSchema> {
    let url = ao_store::pg::test_server_url();
    match ao_store::pg::ScratchSchema::create(&url) {
        Ok(schema) => Some(schema),
        Err(error) if std::env::var_os("CI").is_none() => {
            eprintln!(
                "SKIPPED: no PostgreSQL at {url} ({})",
                ao_types::Report::new(&error)
            );
            None
        }
        Err(error) => panic!(
            "PostgreSQL is required under CI and cannot be reached at {url}: {}",
            ao_types::Report::new(&error)
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_restart_between_payment_and_result_does_not_pay_twice() {
    let Some(schema) = postgres() else {
        return;
    };
    let world = world(DvmScript::DelayedResult(Duration::from_secs(4))).await;
    let url = schema.url().to_owned();
    let (orchestrator, store) = open_on(&world, 1_000, 20, Some(&url));
    assert!(orchestrator.budgets_are_shared());
    let call = {
        let orchestrator = orchestrator.clone();
        tokio::spawn(async move { orchestrator.complete("bot", ask("Shared database")).await })
    };
    for _ in 0..400 {
        if !world.wallet.payments().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(world.wallet.payments().len(), 1, "the job was paid");
    call.abort();
    let _ = call.await;
    orchestrator.drain().await;
    drop(orchestrator);
    drop(store);

    // Another gateway on the same database takes the job up.
    let (other, _store) = open_on(&world, 1_000, 20, Some(&url));
    let done = other.complete("bot", ask("Shared database")).await.unwrap();
    assert!(done.response.content.contains("Shared database"));
    assert_eq!(done.cost_sats, JOB_SATS);
    assert_eq!(world.wallet.payments().len(), 1, "paid twice");
    assert_eq!(world.dvm.jobs_seen(), 1);
}
