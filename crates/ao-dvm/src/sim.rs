//! Simulated, and saying so: a NIP-90 service provider ([`SimDvm`]) and a NIP-47 wallet service
//! ([`SimWallet`]) over real relays, real signed events and real NIP-04 encryption, settling
//! invoices on a [`SimNetwork`] in this process instead of the Lightning network. For tests and
//! `ao serve --simulated`; every result the simulated DVM sends starts with `[simulated DVM]`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
use nostr::hashes::Hash as _;
use nostr::hashes::sha256;
use nostr::nips::nip04;
use nostr::nips::nip47::{
    ErrorCode, GetBalanceResponse, Method, NIP47Error, NostrWalletConnectURI, PayInvoiceResponse,
    Request, RequestParams, Response, ResponseResult,
};
use nostr::secp256k1::{Secp256k1, SecretKey as NodeKey};
use nostr::{
    Event, EventBuilder, Filter, JsonUtil, Keys, Kind, PublicKey, RelayUrl, Tag, Timestamp,
};
use nostr_relay_pool::{RelayOptions, RelayPool, RelayPoolNotification, SubscribeOptions};
use rand::RngCore;
use tokio::sync::Notify;

use crate::nip90::{Amount, Feedback, JobRequest, JobResult, JobStatus, KIND_TEXT_GENERATION};

/// A simulated service could not start or act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("simulated service: {reason}")]
pub struct SimError {
    /// What failed.
    pub reason: String,
}

fn sim_error(e: impl fmt::Display) -> SimError {
    SimError {
        reason: e.to_string(),
    }
}

/// A BOLT11 invoice for `msats`, paying to hash SHA-256(`preimage`), signed by `node_key`, on
/// regtest.
pub fn invoice(node_key: &NodeKey, preimage: [u8; 32], msats: u64) -> Result<String, SimError> {
    let mut secret = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut secret);
    InvoiceBuilder::new(Currency::Regtest)
        .description("simulated DVM job".into())
        .payment_hash(sha256::Hash::hash(&preimage))
        .payment_secret(PaymentSecret(secret))
        .amount_milli_satoshis(msats)
        .current_timestamp()
        .min_final_cltv_expiry_delta(144)
        .build_signed(|message| Secp256k1::new().sign_ecdsa_recoverable(message, node_key))
        .map(|i| i.to_string())
        .map_err(sim_error)
}

/// The simulated Lightning network: the invoices issued and whether each is paid.
#[derive(Debug, Clone, Default)]
pub struct SimNetwork {
    invoices: Arc<Mutex<HashMap<String, Issued>>>,
    paid: Arc<Notify>,
}

#[derive(Debug, Clone)]
struct Issued {
    msats: u64,
    preimage: [u8; 32],
    paid: bool,
}

impl SimNetwork {
    /// An empty network.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new invoice for `msats` from a payee of its own (what a shop a tool buys from does).
    pub fn invoice(&self, msats: u64) -> Result<String, SimError> {
        let mut node = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut node);
        let node_key = NodeKey::from_slice(&node).map_err(sim_error)?;
        self.issue(&node_key, msats).map(|(bolt11, _)| bolt11)
    }

    fn issue(&self, node_key: &NodeKey, msats: u64) -> Result<(String, String), SimError> {
        let mut preimage = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut preimage);
        let bolt11 = invoice(node_key, preimage, msats)?;
        let hash = hex::encode(sha256::Hash::hash(&preimage).to_byte_array());
        self.invoices.lock().map_err(sim_error)?.insert(
            hash.clone(),
            Issued {
                msats,
                preimage,
                paid: false,
            },
        );
        Ok((bolt11, hash))
    }

    /// Settles invoice `hash` for `msats`: its preimage, or why not.
    fn settle(&self, hash: &str, msats: u64) -> Result<[u8; 32], String> {
        let mut invoices = self.invoices.lock().map_err(|e| e.to_string())?;
        let issued = invoices.get_mut(hash).ok_or("no route to the payee")?;
        if issued.paid {
            return Err("the invoice is already paid".into());
        }
        if issued.msats != msats {
            return Err("the amount does not match the invoice".into());
        }
        issued.paid = true;
        drop(invoices);
        self.paid.notify_waiters();
        Ok(issued_preimage(&self.invoices, hash))
    }

    fn is_paid(&self, hash: &str) -> bool {
        self.invoices
            .lock()
            .map(|i| i.get(hash).is_some_and(|x| x.paid))
            .unwrap_or(false)
    }

    /// Waits until `hash` is paid, at most `wait`; whether it was.
    async fn wait_paid(&self, hash: &str, wait: Duration) -> bool {
        let until = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.paid.notified();
            if self.is_paid(hash) {
                return true;
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                return self.is_paid(hash);
            }
        }
    }
}

fn issued_preimage(invoices: &Mutex<HashMap<String, Issued>>, hash: &str) -> [u8; 32] {
    invoices
        .lock()
        .ok()
        .and_then(|i| i.get(hash).map(|x| x.preimage))
        .unwrap_or([0; 32])
}

/// A task stopped when its owner goes.
#[derive(Debug)]
struct Running(tokio::task::AbortHandle);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn connect(relay: &str) -> Result<RelayPool, SimError> {
    let pool = RelayPool::default();
    pool.add_relay(relay, RelayOptions::default())
        .await
        .map_err(sim_error)?;
    pool.connect().await;
    pool.wait_for_connection(Duration::from_secs(5)).await;
    Ok(pool)
}

/// How the simulated wallet answers `pay_invoice`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalletScript {
    /// Pays what it can.
    Pay,
    /// Answers every payment with this NIP-47 error.
    Fail(ErrorCode),
    /// Never answers a payment.
    Silent,
}

/// What the simulated wallet holds and has paid.
#[derive(Debug)]
struct WalletState {
    balance_msats: u64,
    fee_msats: u64,
    payments: Vec<String>,
    script: WalletScript,
}

/// A simulated NIP-47 wallet service: it answers `pay_invoice` and `get_balance` (kinds
/// 23194/23195, NIP-04 encrypted) for one connection, paying on a [`SimNetwork`].
pub struct SimWallet {
    uri: String,
    state: Arc<Mutex<WalletState>>,
    _task: Running,
}

impl fmt::Debug for SimWallet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimWallet")
            .field("uri", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl SimWallet {
    /// Starts a wallet service on `relay` holding `balance_msats`, charging `fee_msats` of
    /// routing fees per payment.
    pub async fn start(
        relay: &str,
        network: SimNetwork,
        balance_msats: u64,
        fee_msats: u64,
    ) -> Result<Self, SimError> {
        let service = Keys::generate();
        let client = Keys::generate();
        let url = RelayUrl::parse(relay).map_err(sim_error)?;
        let uri = NostrWalletConnectURI::new(
            service.public_key(),
            vec![url],
            client.secret_key().clone(),
            None,
        );
        let pool = connect(relay).await?;
        let filter = Filter::new()
            .kind(Kind::WalletConnectRequest)
            .pubkey(service.public_key())
            .since(Timestamp::now());
        let mut notifications = pool.notifications();
        pool.subscribe(vec![filter], SubscribeOptions::default())
            .await
            .map_err(sim_error)?;
        let state = Arc::new(Mutex::new(WalletState {
            balance_msats,
            fee_msats,
            payments: Vec::new(),
            script: WalletScript::Pay,
        }));
        let shared = Arc::clone(&state);
        let client_key = client.public_key();
        let task = tokio::spawn(async move {
            let mut seen = HashSet::new();
            while let Ok(notification) = notifications.recv().await {
                if let RelayPoolNotification::Event { event, .. } = notification
                    && event.pubkey == client_key
                    && seen.insert(event.id)
                {
                    let answer = answer(&service, &event, &shared, &network);
                    match answer {
                        Ok(Some(reply)) => {
                            if let Err(e) = pool.send_event(&reply).await {
                                tracing::warn!(error = %e, "simulated wallet could not answer");
                            }
                        }
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %e, "simulated wallet ignored a request"),
                    }
                }
            }
        });
        Ok(Self {
            uri: uri.to_string(),
            state,
            _task: Running(task.abort_handle()),
        })
    }

    /// The connection URI (it holds the secret that spends: keep it out of logs).
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The balance, in millisats.
    pub fn balance_msats(&self) -> u64 {
        self.state.lock().map(|s| s.balance_msats).unwrap_or(0)
    }

    /// The payment hashes paid, in order.
    pub fn payments(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.payments.clone())
            .unwrap_or_default()
    }

    /// Changes how payments are answered from now on.
    pub fn script(&self, script: WalletScript) {
        if let Ok(mut s) = self.state.lock() {
            s.script = script;
        }
    }
}

/// The encrypted answer to request `event`, or `None` to stay silent.
fn answer(
    service: &Keys,
    event: &Event,
    state: &Mutex<WalletState>,
    network: &SimNetwork,
) -> Result<Option<Event>, SimError> {
    event.verify().map_err(sim_error)?;
    let text =
        nip04::decrypt(service.secret_key(), &event.pubkey, &event.content).map_err(sim_error)?;
    let request = Request::from_json(text).map_err(sim_error)?;
    let mut state = state.lock().map_err(sim_error)?;
    let fail = |method, code, message: &str| Response {
        result_type: method,
        error: Some(NIP47Error {
            code,
            message: message.to_owned(),
        }),
        result: None,
    };
    let response = match request.params {
        RequestParams::GetBalance => Response {
            result_type: Method::GetBalance,
            error: None,
            result: Some(ResponseResult::GetBalance(GetBalanceResponse {
                balance: state.balance_msats,
            })),
        },
        RequestParams::PayInvoice(pay) => match state.script {
            WalletScript::Silent => return Ok(None),
            WalletScript::Fail(code) => fail(Method::PayInvoice, code, "simulated wallet failure"),
            WalletScript::Pay => pay_invoice(&mut state, &pay.invoice, network)
                .unwrap_or_else(|(code, why)| fail(Method::PayInvoice, code, &why)),
        },
        _ => fail(request.method, ErrorCode::NotImplemented, "not simulated"),
    };
    drop(state);
    let content = nip04::encrypt(service.secret_key(), &event.pubkey, response.as_json())
        .map_err(sim_error)?;
    let tags = [Tag::public_key(event.pubkey), Tag::event(event.id)];
    EventBuilder::new(Kind::WalletConnectResponse, content)
        .tags(tags)
        .sign_with_keys(service)
        .map(Some)
        .map_err(sim_error)
}

fn pay_invoice(
    state: &mut WalletState,
    bolt11: &str,
    network: &SimNetwork,
) -> Result<Response, (ErrorCode, String)> {
    let invoice: lightning_invoice::Bolt11Invoice = bolt11
        .parse()
        .map_err(|e| (ErrorCode::Other, format!("not an invoice: {e}")))?;
    let msats = invoice
        .amount_milli_satoshis()
        .ok_or((ErrorCode::Other, "no amount".to_owned()))?;
    let total = msats.saturating_add(state.fee_msats);
    if total > state.balance_msats {
        return Err((
            ErrorCode::InsufficientBalance,
            "simulated balance too low".into(),
        ));
    }
    let hash = hex::encode(invoice.payment_hash().to_byte_array());
    let preimage = network
        .settle(&hash, msats)
        .map_err(|why| (ErrorCode::PaymentFailed, why))?;
    state.balance_msats -= total;
    state.payments.push(hash);
    Ok(Response {
        result_type: Method::PayInvoice,
        error: None,
        result: Some(ResponseResult::PayInvoice(PayInvoiceResponse {
            preimage: hex::encode(preimage),
            fees_paid: Some(state.fee_msats),
        })),
    })
}

/// How the simulated DVM behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DvmScript {
    /// Asks its price, and answers once paid.
    Honest,
    /// Never answers.
    Silent,
    /// Asks 1 sat more than the bid.
    OverAsk,
    /// Sends an invoice for its price with an `amount` tag 1 sat lower.
    WrongAmountTag,
    /// Sends a result without asking to be paid.
    ResultWithoutPayment,
    /// Takes the payment and never answers.
    PaidThenSilent,
    /// Answers this long after it is paid.
    DelayedResult(Duration),
    /// Answers jobs addressed to other providers too: asks its price and sends a result at once.
    Impostor,
}

/// A simulated NIP-90 service provider for text generation (kind 5050).
pub struct SimDvm {
    keys: Keys,
    jobs: Arc<Mutex<HashSet<nostr::EventId>>>,
    _task: Running,
}

impl fmt::Debug for SimDvm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimDvm")
            .field("public_key", &self.keys.public_key().to_hex())
            .finish_non_exhaustive()
    }
}

impl SimDvm {
    /// Starts a service provider on `relay`, pricing each job at `price_msats`, behaving as
    /// `script`, and paid on `network`.
    pub async fn start(
        relay: &str,
        network: SimNetwork,
        price_msats: u64,
        script: DvmScript,
    ) -> Result<Self, SimError> {
        let keys = Keys::generate();
        let mut node = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut node);
        let node_key = NodeKey::from_slice(&node).map_err(sim_error)?;
        let pool = connect(relay).await?;
        let filter = Filter::new()
            .kind(Kind::from(KIND_TEXT_GENERATION))
            .since(Timestamp::now());
        let mut notifications = pool.notifications();
        pool.subscribe(vec![filter], SubscribeOptions::default())
            .await
            .map_err(sim_error)?;
        let jobs = Arc::new(Mutex::new(HashSet::new()));
        let provider = Provider {
            keys: keys.clone(),
            node_key,
            network,
            price_msats,
            script,
            pool,
        };
        let seen = Arc::clone(&jobs);
        let task = tokio::spawn(async move {
            let provider = Arc::new(provider);
            while let Ok(notification) = notifications.recv().await {
                let RelayPoolNotification::Event { event, .. } = notification else {
                    continue;
                };
                if !seen.lock().is_ok_and(|mut s| s.insert(event.id)) {
                    continue;
                }
                let provider = Arc::clone(&provider);
                tokio::spawn(async move {
                    if let Err(e) = provider.serve(&event).await {
                        tracing::warn!(error = %e, "simulated DVM dropped a job");
                    }
                });
            }
        });
        Ok(Self {
            keys,
            jobs,
            _task: Running(task.abort_handle()),
        })
    }

    /// The provider's public key.
    pub fn public_key(&self) -> PublicKey {
        self.keys.public_key()
    }

    /// The jobs it has seen.
    pub fn jobs_seen(&self) -> usize {
        self.jobs.lock().map(|j| j.len()).unwrap_or(0)
    }
}

struct Provider {
    keys: Keys,
    node_key: NodeKey,
    network: SimNetwork,
    price_msats: u64,
    script: DvmScript,
    pool: RelayPool,
}

impl Provider {
    async fn serve(&self, job: &Event) -> Result<(), SimError> {
        let request = JobRequest::from_event(job).map_err(sim_error)?;
        if request.service.is_some_and(|k| k != self.keys.public_key())
            && self.script != DvmScript::Impostor
        {
            return Ok(());
        }
        let after_payment = match self.script {
            DvmScript::Silent => return Ok(()),
            DvmScript::Impostor => {
                let (bolt11, _) = self.network.issue(&self.node_key, self.price_msats)?;
                let feedback = Feedback {
                    provider: self.keys.public_key(),
                    status: JobStatus::PaymentRequired,
                    extra: None,
                    amount: Some(Amount {
                        msats: self.price_msats,
                        bolt11: Some(bolt11),
                    }),
                };
                self.send(&feedback.to_event(job, &self.keys).map_err(sim_error)?)
                    .await?;
                return self.result(job, &request).await;
            }
            DvmScript::ResultWithoutPayment => return self.result(job, &request).await,
            DvmScript::PaidThenSilent => None,
            DvmScript::DelayedResult(delay) => Some(delay),
            DvmScript::Honest | DvmScript::OverAsk | DvmScript::WrongAmountTag => {
                Some(Duration::ZERO)
            }
        };
        let price = match self.script {
            DvmScript::OverAsk => request.bid_msats.unwrap_or(self.price_msats) + 1_000,
            _ => self.price_msats,
        };
        let tag = match self.script {
            DvmScript::WrongAmountTag => price.saturating_sub(1_000),
            _ => price,
        };
        let (bolt11, hash) = self.network.issue(&self.node_key, price)?;
        let feedback = Feedback {
            provider: self.keys.public_key(),
            status: JobStatus::PaymentRequired,
            extra: Some("simulated DVM: pay to run the job".into()),
            amount: Some(Amount {
                msats: tag,
                bolt11: Some(bolt11),
            }),
        };
        self.send(&feedback.to_event(job, &self.keys).map_err(sim_error)?)
            .await?;
        if !self
            .network
            .wait_paid(&hash, Duration::from_secs(120))
            .await
        {
            return Ok(());
        }
        let Some(delay) = after_payment else {
            return Ok(());
        };
        tokio::time::sleep(delay).await;
        self.result(job, &request).await
    }

    async fn result(&self, job: &Event, request: &JobRequest) -> Result<(), SimError> {
        let prompt: String = request.prompt.chars().take(200).collect();
        let content = format!(
            "[simulated DVM] {} answers: you said \"{prompt}\"",
            request.model.as_deref().unwrap_or("a model")
        );
        let result = JobResult {
            provider: self.keys.public_key(),
            content,
            amount: None,
            created: 0,
        };
        self.send(&result.to_event(job, &self.keys).map_err(sim_error)?)
            .await
    }

    async fn send(&self, event: &Event) -> Result<(), SimError> {
        self.pool
            .send_event(event)
            .await
            .map(drop)
            .map_err(sim_error)
    }
}
