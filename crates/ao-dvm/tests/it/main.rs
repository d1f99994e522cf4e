//! The DVM backend end to end: a relay on loopback, a simulated DVM and a simulated NWC wallet
//! service, real signed events and real NIP-04 encryption, the backend paying through
//! rust-nostr's NWC client.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]
#![allow(missing_docs, reason = "test code")]

use std::sync::Arc;
use std::time::Duration;

use ao_dvm::sim::{DvmScript, SimDvm, SimNetwork, SimWallet, WalletScript};
use ao_dvm::{DvmBackend, DvmConfig, MemoryPaymentLedger, NwcWallet, PaymentLedger};
use ao_routing::BackendConfig;
use ao_routing::http::{Backend, BackendError, ChatMessage, ChatRequest};
use ao_signer::Relay;
use ao_types::BackendProvider;

/// What a job costs at the simulated DVM, and the wallet's fee per payment.
const PRICE_MSATS: u64 = 21_000;
const FEE_MSATS: u64 = 500;
const BALANCE_MSATS: u64 = 1_000_000;

struct World {
    relay: Relay,
    network: SimNetwork,
    wallet: SimWallet,
    dvm: SimDvm,
}

async fn world(script: DvmScript) -> World {
    world_with(script, BALANCE_MSATS).await
}

async fn world_with(script: DvmScript, balance: u64) -> World {
    let relay = Relay::start("127.0.0.1:0".parse().unwrap(), 100_000)
        .await
        .unwrap();
    let network = SimNetwork::new();
    let wallet = SimWallet::start(relay.url(), network.clone(), balance, FEE_MSATS)
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
    }
}

fn backend(
    world: &World,
    bid_sats: u64,
    timeout: Duration,
    ledger: Arc<dyn PaymentLedger>,
) -> DvmBackend {
    let wallet = NwcWallet::from_uri(world.wallet.uri(), "test", Duration::from_secs(5)).unwrap();
    DvmBackend::new(
        BackendConfig::new(BackendProvider::Dvm, "sim-llm", 0, 0),
        DvmConfig {
            relays: vec![world.relay.url().to_owned()],
            service: Some(world.dvm.public_key()),
            job_kind: 5050,
            max_bid_sats: bid_sats,
            timeout,
        },
        Arc::new(wallet),
        ledger,
    )
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest::new(vec![ChatMessage::new("user", text)]).with_max_tokens(64)
}

fn memory() -> Arc<dyn PaymentLedger> {
    Arc::new(MemoryPaymentLedger::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_paid_once_and_answered() {
    let world = world(DvmScript::Honest).await;
    let dvm = backend(&world, 50, Duration::from_secs(20), memory());
    let reply = dvm.complete(&ask("Say hello")).await.unwrap();
    assert!(
        reply.content.starts_with("[simulated DVM]"),
        "{}",
        reply.content
    );
    assert!(reply.content.contains("Say hello"));
    // 21,000 msats and a 500 msat fee: 21.5 sats, rounded up.
    assert_eq!(reply.billed_sats, Some(22));
    assert_eq!(
        reply.body["choices"][0]["message"]["content"],
        reply.content
    );
    assert_eq!(world.wallet.payments().len(), 1);
    assert_eq!(
        world.wallet.balance_msats(),
        BALANCE_MSATS - PRICE_MSATS - FEE_MSATS
    );
    let wallet = dvm.wallet().balance().await.unwrap();
    assert_eq!(wallet, world.wallet.balance_msats(), "get_balance over NWC");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dvm_asking_more_than_the_bid_is_not_paid() {
    let world = world(DvmScript::OverAsk).await;
    let dvm = backend(&world, 30, Duration::from_secs(20), memory());
    let error = dvm.complete(&ask("Say hello")).await.unwrap_err();
    assert!(
        matches!(&error, BackendError::Unpaid { reason, .. } if reason.contains("more than the bid")),
        "{error}"
    );
    assert!(!error.may_have_billed());
    assert!(world.wallet.payments().is_empty());
    assert_eq!(world.wallet.balance_msats(), BALANCE_MSATS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invoice_that_does_not_match_its_amount_tag_is_not_paid() {
    let world = world(DvmScript::WrongAmountTag).await;
    let dvm = backend(&world, 50, Duration::from_secs(20), memory());
    let error = dvm.complete(&ask("Say hello")).await.unwrap_err();
    assert!(
        matches!(&error, BackendError::Unpaid { reason, .. } if reason.contains("amount tag")),
        "{error}"
    );
    assert!(world.wallet.payments().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_is_released() {
    let world = world(DvmScript::Silent).await;
    let dvm = backend(&world, 50, Duration::from_millis(1_500), memory());
    let error = dvm.complete(&ask("Anyone?")).await.unwrap_err();
    assert!(matches!(error, BackendError::Unpaid { .. }), "{error}");
    assert!(!error.may_have_billed());
    assert_eq!(error.billed_sats(), None);
    assert_eq!(world.dvm.jobs_seen(), 1, "the job was published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_too_poor_to_pay_releases_the_call() {
    let world = world_with(DvmScript::Honest, 10_000).await;
    let ledger = memory();
    let dvm = backend(&world, 50, Duration::from_secs(20), Arc::clone(&ledger));
    let error = dvm.complete(&ask("Say hello")).await.unwrap_err();
    assert!(
        matches!(&error, BackendError::Unpaid { reason, .. } if reason.contains("balance is too low")),
        "{error}"
    );
    assert!(!error.may_have_billed());
    assert_eq!(world.wallet.balance_msats(), 10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_refusals_map_to_clear_errors() {
    use nostr::nips::nip47::ErrorCode;
    let world = world(DvmScript::Honest).await;
    for (code, says) in [
        (ErrorCode::QuotaExceeded, "quota"),
        (ErrorCode::RateLimited, "rate limiting"),
        (ErrorCode::PaymentFailed, "could not pay"),
    ] {
        world.wallet.script(WalletScript::Fail(code));
        let dvm = backend(&world, 50, Duration::from_secs(20), memory());
        let error = dvm.complete(&ask(says)).await.unwrap_err();
        assert!(
            matches!(&error, BackendError::Unpaid { reason, .. } if reason.contains(says)),
            "{error}"
        );
    }
    assert!(world.wallet.payments().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_without_a_result_is_charged_what_was_paid() {
    let world = world(DvmScript::PaidThenSilent).await;
    let dvm = backend(&world, 50, Duration::from_secs(5), memory());
    let error = dvm.complete(&ask("Say hello")).await.unwrap_err();
    assert!(
        matches!(error, BackendError::PaidUnanswered { paid_sats: 22, .. }),
        "{error}"
    );
    assert!(error.may_have_billed());
    assert_eq!(error.billed_sats(), Some(22));
    assert_eq!(world.wallet.payments().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_takes_up_the_paid_job_and_never_pays_twice() {
    let world = world(DvmScript::DelayedResult(Duration::from_secs(3))).await;
    let ledger = memory();
    let first = backend(&world, 50, Duration::from_secs(2), Arc::clone(&ledger));
    let error = first.complete(&ask("Slow one")).await.unwrap_err();
    assert!(
        matches!(error, BackendError::PaidUnanswered { .. }),
        "{error}"
    );
    let retry = backend(&world, 50, Duration::from_secs(20), ledger);
    let reply = retry.complete(&ask("Slow one")).await.unwrap();
    assert!(reply.content.contains("Slow one"));
    assert_eq!(reply.billed_sats, Some(22), "charged what the job cost");
    assert_eq!(world.wallet.payments().len(), 1, "paid once");
    assert_eq!(world.dvm.jobs_seen(), 1, "the same job, taken up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_without_payment_costs_nothing() {
    let world = world(DvmScript::ResultWithoutPayment).await;
    let dvm = backend(&world, 50, Duration::from_secs(20), memory());
    let reply = dvm.complete(&ask("Free?")).await.unwrap();
    assert_eq!(reply.billed_sats, Some(0));
    assert!(world.wallet.payments().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_from_another_provider_than_the_one_asked_are_ignored() {
    let world = world(DvmScript::Silent).await;
    let _impostor = SimDvm::start(
        world.relay.url(),
        world.network.clone(),
        PRICE_MSATS,
        DvmScript::Impostor,
    )
    .await
    .unwrap();
    let dvm = backend(&world, 50, Duration::from_secs(2), memory());
    let error = dvm.complete(&ask("Who answers?")).await.unwrap_err();
    assert!(
        matches!(&error, BackendError::Unpaid { reason, .. } if reason.contains("no data vending machine answered")),
        "{error}"
    );
    assert!(world.wallet.payments().is_empty(), "the impostor was paid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_that_never_answers_counts_as_paid() {
    let world = world(DvmScript::Honest).await;
    world.wallet.script(WalletScript::Silent);
    let wallet = NwcWallet::from_uri(world.wallet.uri(), "test", Duration::from_secs(1)).unwrap();
    let dvm = DvmBackend::new(
        BackendConfig::new(BackendProvider::Dvm, "sim-llm", 0, 0),
        DvmConfig {
            relays: vec![world.relay.url().to_owned()],
            service: Some(world.dvm.public_key()),
            job_kind: 5050,
            max_bid_sats: 50,
            timeout: Duration::from_secs(5),
        },
        Arc::new(wallet),
        memory(),
    );
    let error = dvm.complete(&ask("Hello?")).await.unwrap_err();
    // Whether the wallet paid is unknown: the call is charged the invoice and the whole fee
    // allowance (1 sat), fail closed.
    assert!(
        matches!(error, BackendError::PaidUnanswered { paid_sats: 22, .. }),
        "{error}"
    );
}

#[test]
fn the_wallet_uri_never_shows() {
    let secret = "a".repeat(63) + "b";
    let pubkey = nostr::Keys::generate().public_key().to_hex();
    let uri =
        format!("nostr+walletconnect://{pubkey}?relay=ws%3A%2F%2F127.0.0.1%3A1&secret={secret}");
    let wallet = NwcWallet::from_uri(&uri, "AO_NWC_URI", Duration::from_secs(1)).unwrap();
    let shown = format!("{wallet:?}");
    assert!(!shown.contains(&secret), "{shown}");
    assert!(shown.contains("redacted"));
    let bad = NwcWallet::from_uri(
        &format!("nostr+walletconnect://nope?secret={secret}"),
        "AO_NWC_URI",
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert!(!bad.to_string().contains(&secret), "{bad}");
    assert!(bad.to_string().contains("AO_NWC_URI"));
}
