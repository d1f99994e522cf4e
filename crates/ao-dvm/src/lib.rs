//! Compute bought on Nostr markets and paid over Lightning, within budget.
//!
//! - [`DvmBackend`] serves chat completions from NIP-90 data vending machines (job kind 5050,
//!   text generation), as an `ao_routing::http::Backend` like any other: the orchestrator reserves
//!   its bid before the job is published, and charges what was paid, fees included.
//! - [`nip90`] writes job requests and reads feedback and results, strictly.
//! - [`check_invoice`] decodes a BOLT11 invoice and checks it against the `amount` tag it came
//!   with and the bid, before anything is paid.
//! - [`Wallet`] pays; [`NwcWallet`] drives a wallet over Nostr Wallet Connect (NIP-47), its
//!   connection URI read from the environment ([`NWC_URI_ENV`]) and never shown.
//! - [`PaymentLedger`] writes each invoice down by payment hash before the wallet is asked, so
//!   that none is paid twice, across retries and restarts (`ao-store` implements it on SQLite).
//! - With the feature `sim`, [`sim`] has a simulated DVM service provider and a simulated NWC
//!   wallet service, for tests and `ao serve --simulated`; both say they are simulated.
//!
//! What it is **not** for: deciding what an agent may spend (the orchestrator's budgets do, by
//! reserving the bid), or holding funds (the wallet does; a native Spark SDK adapter would be a
//! second [`Wallet`], see `docs/DECISIONS.md`).

#![forbid(unsafe_code)]

mod backend;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod invoice;
pub mod nip90;
mod payments;
#[cfg(feature = "sim")]
pub mod sim;
mod wallet;

pub use backend::{DvmBackend, DvmConfig};
pub use invoice::{CheckedInvoice, InvoiceError, check_invoice, decode_invoice};
pub use payments::{
    Begun, MemoryPaymentLedger, PaymentLedger, PaymentLedgerError, PaymentRecord, PaymentState,
    StoredJob, fee_allowance_msats,
};
pub use wallet::{NWC_URI_ENV, NwcWallet, Payment, Wallet, WalletError, fee_allowance_sats};

#[cfg(test)]
mod tests;
