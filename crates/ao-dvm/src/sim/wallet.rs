//! The simulated NIP-47 wallet service.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use nostr::hashes::Hash as _;
use nostr::nips::nip04;
use nostr::nips::nip47::{
    ErrorCode, GetBalanceResponse, Method, NIP47Error, NostrWalletConnectURI, PayInvoiceResponse,
    Request, RequestParams, Response, ResponseResult,
};
use nostr::{Event, EventBuilder, Filter, JsonUtil, Keys, Kind, RelayUrl, Tag, Timestamp};
use nostr_relay_pool::{RelayPoolNotification, SubscribeOptions};

use super::{Running, SimError, SimNetwork, connect, sim_error};

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
