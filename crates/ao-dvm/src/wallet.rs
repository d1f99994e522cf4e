//! The wallet that pays: the [`Wallet`] trait, and [`NwcWallet`], a wallet driven over Nostr
//! Wallet Connect (NIP-47), which is how wallets, Spark-based ones included, are driven remotely.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use nostr::nips::nip47::{self, ErrorCode, NostrWalletConnectURI, PayInvoiceRequest};
use nwc::{NWC, NostrWalletConnectOptions};

/// The environment variable the NWC connection URI is read from by default. The URI holds the
/// secret that spends from the wallet: it is read once, and never written to a log, an error or
/// `Debug`.
pub const NWC_URI_ENV: &str = "AO_NWC_URI";

/// The routing fee allowance reserved on top of a payment of `amount_sats`: 1%, at least 1 sat.
/// A wallet that charges more is still charged in full (the excess is counted as overage).
pub fn fee_allowance_sats(amount_sats: u64) -> u64 {
    (amount_sats / 100).max(1)
}

/// A payment the wallet made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The preimage, hex: the proof of payment.
    pub preimage: String,
    /// The routing fees paid on top of the invoice's amount, in millisats.
    pub fee_msats: u64,
}

/// The wallet did not pay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WalletError {
    /// The wallet holds too little to pay the invoice and its fees.
    #[error("the wallet's balance is too low to pay: {message}")]
    InsufficientBalance {
        /// What the wallet said.
        message: String,
    },
    /// The connection's spending quota is used up.
    #[error("the wallet connection's spending quota is exceeded: {message}")]
    QuotaExceeded {
        /// What the wallet said.
        message: String,
    },
    /// The wallet asks to slow down.
    #[error("the wallet is rate limiting this connection: {message}")]
    RateLimited {
        /// What the wallet said.
        message: String,
    },
    /// The payment failed (no route, a timeout on the network): nothing was paid.
    #[error("the wallet could not pay the invoice: {message}")]
    PaymentFailed {
        /// What the wallet said.
        message: String,
    },
    /// The wallet refused the request (restricted, unauthorised, not implemented, internal).
    #[error("the wallet refused the request ({code}): {message}")]
    Refused {
        /// The NIP-47 error code.
        code: String,
        /// What the wallet said.
        message: String,
    },
    /// No answer came from the wallet in time: a payment may or may not have left.
    #[error("the wallet did not answer in time; a payment may have been made")]
    NoAnswer,
    /// The wallet could not be reached or its answer could not be read: a payment may or may
    /// not have left.
    #[error("the wallet's answer could not be had: {reason}")]
    Unreadable {
        /// What failed.
        reason: String,
    },
    /// The environment variable with the connection URI is not set.
    #[error(
        "the wallet connection URI is expected in the environment variable `{variable}`, which is not set"
    )]
    MissingUri {
        /// The variable.
        variable: String,
    },
    /// The connection URI does not parse (its text is not repeated here: it holds a secret).
    #[error("the wallet connection URI in `{variable}` is not a valid nostr+walletconnect:// URI")]
    BadUri {
        /// Where it came from.
        variable: String,
    },
}

impl WalletError {
    /// Whether the wallet says that nothing left it: a balance too low, a quota, a rate limit, a
    /// failed payment or a refusal. When it is not sure (no answer, an unreadable one), a
    /// payment may have been made, and is counted as made.
    pub fn nothing_paid(&self) -> bool {
        !matches!(self, WalletError::NoAnswer | WalletError::Unreadable { .. })
    }
}

/// A wallet that pays BOLT11 invoices.
#[async_trait]
pub trait Wallet: Send + Sync + fmt::Debug {
    /// Pays `bolt11` (already checked: see [`check_invoice`](crate::check_invoice)).
    async fn pay_invoice(&self, bolt11: &str) -> Result<Payment, WalletError>;

    /// The balance, in millisats.
    async fn balance(&self) -> Result<u64, WalletError>;
}

/// A wallet driven over Nostr Wallet Connect (NIP-47), with rust-nostr's `nwc` client.
pub struct NwcWallet {
    client: NWC,
    wallet: nostr::PublicKey,
    relays: Vec<String>,
}

impl fmt::Debug for NwcWallet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NwcWallet")
            .field("wallet", &self.wallet.to_hex())
            .field("relays", &self.relays)
            .field("uri", &"<redacted>")
            .finish()
    }
}

impl NwcWallet {
    /// A wallet from the connection URI in the environment variable `variable` (default
    /// [`NWC_URI_ENV`]); each request waits at most `timeout` for the wallet's answer.
    pub fn from_env(variable: &str, timeout: Duration) -> Result<Self, WalletError> {
        let uri = std::env::var(variable).map_err(|_| WalletError::MissingUri {
            variable: variable.to_owned(),
        })?;
        Self::from_uri(&uri, variable, timeout)
    }

    /// A wallet from connection `uri`; `source` names where it came from, for errors.
    pub fn from_uri(uri: &str, source: &str, timeout: Duration) -> Result<Self, WalletError> {
        let uri = NostrWalletConnectURI::parse(uri.trim()).map_err(|_| WalletError::BadUri {
            variable: source.to_owned(),
        })?;
        let wallet = uri.public_key;
        let relays = uri.relays.iter().map(ToString::to_string).collect();
        let client = NWC::with_opts(uri, NostrWalletConnectOptions::new().timeout(timeout));
        Ok(Self {
            client,
            wallet,
            relays,
        })
    }
}

#[async_trait]
impl Wallet for NwcWallet {
    async fn pay_invoice(&self, bolt11: &str) -> Result<Payment, WalletError> {
        let paid = self
            .client
            .pay_invoice(PayInvoiceRequest::new(bolt11))
            .await
            .map_err(map_error)?;
        Ok(Payment {
            preimage: paid.preimage,
            fee_msats: paid.fees_paid.unwrap_or(0),
        })
    }

    async fn balance(&self) -> Result<u64, WalletError> {
        self.client.get_balance().await.map_err(map_error)
    }
}

/// What an `nwc` error means for the money.
fn map_error(error: nwc::Error) -> WalletError {
    match error {
        nwc::Error::NIP47(nip47::Error::ErrorCode(e)) => {
            let message = e.message;
            match e.code {
                ErrorCode::InsufficientBalance => WalletError::InsufficientBalance { message },
                ErrorCode::QuotaExceeded => WalletError::QuotaExceeded { message },
                ErrorCode::RateLimited => WalletError::RateLimited { message },
                ErrorCode::PaymentFailed => WalletError::PaymentFailed { message },
                code => WalletError::Refused {
                    code: format!("{code:?}"),
                    message,
                },
            }
        }
        nwc::Error::Timeout | nwc::Error::PrematureExit => WalletError::NoAnswer,
        other => WalletError::Unreadable {
            reason: other.to_string(),
        },
    }
}
