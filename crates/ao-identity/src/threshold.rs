use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::key::{InvalidPublicKey, parse_public_key};

/// A `threshold`-of-`total_signers` threshold key: which signers hold shares, and the group public
/// key their signatures verify under.
///
/// The group public key is the agent's Nostr key (x-only, BIP-340), and any `threshold` of the
/// signers together produce a standard Nostr signature under it; fewer learn nothing about the key.
///
/// Two checks are offered. [`is_valid`](ThresholdConfig::is_valid) is the structural check the spec
/// shows (its example uses placeholder key strings). [`validate`](ThresholdConfig::validate) also
/// parses every key and says exactly what is wrong; use it on anything that came from outside.
///
/// ```
/// use ao_identity::ThresholdConfig;
///
/// let config = ThresholdConfig::new(2, 3)
///     .with_signers(vec!["a".into(), "b".into(), "c".into()])
///     .with_group_pubkey("g".into());
/// assert!(config.is_valid());
/// // Placeholder strings are not keys.
/// assert!(config.validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdConfig {
    /// Signatures required, such as 2.
    pub threshold: u32,
    /// Signers holding a share, such as 3.
    pub total_signers: u32,
    /// The signers' public keys (64 hex characters or npub), one per signer.
    pub signer_pubkeys: Vec<String>,
    /// The group public key (64 hex characters or npub): the agent's Nostr key.
    pub group_pubkey: String,
}

/// What is wrong with a [`ThresholdConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ThresholdConfigError {
    /// The threshold is 0: a key that needs no signature protects nothing.
    #[error("threshold is 0; at least 1 signature must be required")]
    ThresholdZero,
    /// More signatures are required than there are signers.
    #[error("threshold {threshold} is above the {total} signers; no group could ever sign")]
    ThresholdAboveTotal {
        /// The configured threshold.
        threshold: u32,
        /// The configured number of signers.
        total: u32,
    },
    /// More signers than FROST identifiers allow.
    #[error("{total} signers is more than the {max} a FROST group can hold")]
    TooManySigners {
        /// The configured number of signers.
        total: u32,
        /// The largest number allowed.
        max: u32,
    },
    /// The number of signer keys differs from `total_signers`.
    #[error(
        "{found} signer public keys are given for {expected} signers; give exactly one per signer"
    )]
    SignerCountMismatch {
        /// `total_signers`.
        expected: u32,
        /// The number of keys given.
        found: usize,
    },
    /// The same signer is listed twice.
    #[error("signer {index} repeats signer {first_index}; every signer needs its own key")]
    DuplicateSigner {
        /// The position of the repeat, from 0.
        index: usize,
        /// The position of the first occurrence, from 0.
        first_index: usize,
    },
    /// No group public key is set.
    #[error("the group public key is missing; set it with `with_group_pubkey`")]
    MissingGroupKey,
    /// A signer key does not parse.
    #[error("the public key of signer {index} is not valid")]
    InvalidSignerKey {
        /// The position of the signer, from 0.
        index: usize,
        /// Why the key was refused.
        source: InvalidPublicKey,
    },
    /// The group key does not parse.
    #[error("the group public key is not valid")]
    InvalidGroupKey(#[source] InvalidPublicKey),
}

impl ThresholdConfig {
    /// The most signers a group may have: FROST identifiers are 16-bit.
    pub const MAX_SIGNERS: u32 = u16::MAX as u32;

    /// A `threshold`-of-`total_signers` configuration with no keys yet.
    pub fn new(threshold: u32, total_signers: u32) -> Self {
        Self {
            threshold,
            total_signers,
            signer_pubkeys: Vec::new(),
            group_pubkey: String::new(),
        }
    }

    /// Sets the signers' public keys, one per signer.
    pub fn with_signers(mut self, signer_pubkeys: Vec<String>) -> Self {
        self.signer_pubkeys = signer_pubkeys;
        self
    }

    /// Sets the group public key.
    pub fn with_group_pubkey(mut self, group_pubkey: String) -> Self {
        self.group_pubkey = group_pubkey;
        self
    }

    /// The structural check: `1 <= threshold <= total_signers`, one signer key per signer, no
    /// duplicate signer, and a non-empty group key. It does not parse the keys; see
    /// [`validate`](ThresholdConfig::validate).
    pub fn is_valid(&self) -> bool {
        self.check_structure().is_ok()
    }

    /// The full check: everything [`is_valid`](ThresholdConfig::is_valid) checks, and every key
    /// parses as a secp256k1 x-only public key (hex or npub). Duplicates are found on the parsed
    /// keys, so the same key written once in hex and once as an npub is caught.
    pub fn validate(&self) -> Result<(), ThresholdConfigError> {
        self.check_structure()?;
        let mut seen = HashMap::with_capacity(self.signer_pubkeys.len());
        for (index, key) in self.signer_pubkeys.iter().enumerate() {
            let key = parse_public_key(key)
                .map_err(|source| ThresholdConfigError::InvalidSignerKey { index, source })?;
            if let Some(&first_index) = seen.get(&key) {
                return Err(ThresholdConfigError::DuplicateSigner { index, first_index });
            }
            seen.insert(key, index);
        }
        parse_public_key(&self.group_pubkey).map_err(ThresholdConfigError::InvalidGroupKey)?;
        Ok(())
    }

    /// The group public key, parsed. Fails when it is not a valid x-only key.
    pub fn group_public_key(&self) -> Result<nostr::PublicKey, ThresholdConfigError> {
        if self.group_pubkey.is_empty() {
            return Err(ThresholdConfigError::MissingGroupKey);
        }
        parse_public_key(&self.group_pubkey).map_err(ThresholdConfigError::InvalidGroupKey)
    }

    fn check_structure(&self) -> Result<(), ThresholdConfigError> {
        if self.threshold == 0 {
            return Err(ThresholdConfigError::ThresholdZero);
        }
        if self.threshold > self.total_signers {
            return Err(ThresholdConfigError::ThresholdAboveTotal {
                threshold: self.threshold,
                total: self.total_signers,
            });
        }
        if self.total_signers > Self::MAX_SIGNERS {
            return Err(ThresholdConfigError::TooManySigners {
                total: self.total_signers,
                max: Self::MAX_SIGNERS,
            });
        }
        if usize::try_from(self.total_signers).ok() != Some(self.signer_pubkeys.len()) {
            return Err(ThresholdConfigError::SignerCountMismatch {
                expected: self.total_signers,
                found: self.signer_pubkeys.len(),
            });
        }
        let mut seen = HashMap::with_capacity(self.signer_pubkeys.len());
        for (index, key) in self.signer_pubkeys.iter().enumerate() {
            if let Some(&first_index) = seen.get(key.as_str()) {
                return Err(ThresholdConfigError::DuplicateSigner { index, first_index });
            }
            seen.insert(key.as_str(), index);
        }
        if self.group_pubkey.trim().is_empty() {
            return Err(ThresholdConfigError::MissingGroupKey);
        }
        Ok(())
    }
}
