//! BOLT11 invoices, decoded and checked before any is paid.

use std::str::FromStr;

use lightning_invoice::Bolt11Invoice;
use nostr::hashes::Hash as _;

/// An invoice that may be paid: it decodes, its signature checks, it has not expired, it asks
/// exactly the `amount` tag it came with, and no more than the bid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedInvoice {
    /// The invoice as given.
    pub bolt11: String,
    /// Its payment hash, 64 hex characters: what makes a payment happen at most once.
    pub payment_hash: String,
    /// What it asks, in millisats.
    pub amount_msats: u64,
}

/// An invoice that is not paid, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvoiceError {
    /// The text is not a BOLT11 invoice, or its signature does not check.
    #[error("the invoice cannot be decoded: {reason}")]
    Undecodable {
        /// What the decoder said.
        reason: String,
    },
    /// The invoice names no amount: it could be paid any amount, so it is not paid.
    #[error("the invoice names no amount")]
    NoAmount,
    /// The invoice asks another amount than its `amount` tag.
    #[error("the invoice asks {invoice_msats} msats but its amount tag says {tag_msats} msats")]
    AmountMismatch {
        /// What the invoice asks.
        invoice_msats: u64,
        /// What the tag says.
        tag_msats: u64,
    },
    /// The provider asks more than the bid.
    #[error("the provider asks {asked_msats} msats, more than the bid of {bid_msats} msats")]
    OverBid {
        /// What is asked.
        asked_msats: u64,
        /// The bid.
        bid_msats: u64,
    },
    /// The invoice has expired.
    #[error("the invoice has expired")]
    Expired,
}

/// Checks `bolt11`, sent with an `amount` tag of `tag_msats`, against a bid of `bid_msats`.
pub fn check_invoice(
    bolt11: &str,
    tag_msats: u64,
    bid_msats: u64,
) -> Result<CheckedInvoice, InvoiceError> {
    if tag_msats > bid_msats {
        return Err(InvoiceError::OverBid {
            asked_msats: tag_msats,
            bid_msats,
        });
    }
    let invoice = decode_invoice(bolt11)?;
    if invoice.amount_msats != tag_msats {
        return Err(InvoiceError::AmountMismatch {
            invoice_msats: invoice.amount_msats,
            tag_msats,
        });
    }
    Ok(invoice)
}

/// Decodes `bolt11`: it must check, name an amount, and not have expired.
pub fn decode_invoice(bolt11: &str) -> Result<CheckedInvoice, InvoiceError> {
    let invoice =
        Bolt11Invoice::from_str(bolt11.trim()).map_err(|e| InvoiceError::Undecodable {
            reason: e.to_string(),
        })?;
    let amount_msats = invoice
        .amount_milli_satoshis()
        .ok_or(InvoiceError::NoAmount)?;
    if invoice.is_expired() {
        return Err(InvoiceError::Expired);
    }
    Ok(CheckedInvoice {
        bolt11: bolt11.trim().to_owned(),
        payment_hash: hex::encode(invoice.payment_hash().to_byte_array()),
        amount_msats,
    })
}
