//! Simulated, and saying so: a NIP-90 service provider ([`SimDvm`]) and a NIP-47 wallet service
//! ([`SimWallet`]) over real relays, real signed events and real NIP-04 encryption, settling
//! invoices on a [`SimNetwork`] in this process instead of the Lightning network. For tests and
//! `ao serve --simulated`; every result the simulated DVM sends starts with `[simulated DVM]`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
use nostr::hashes::Hash as _;
use nostr::hashes::sha256;
use nostr::secp256k1::{Secp256k1, SecretKey as NodeKey};
use nostr_relay_pool::{RelayOptions, RelayPool};
use rand::RngCore;
use tokio::sync::Notify;

mod dvm;
mod wallet;

pub use dvm::{DvmScript, SimDvm};
pub use wallet::{SimWallet, WalletScript};

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
