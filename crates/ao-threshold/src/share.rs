use std::fmt;

use frost_secp256k1_tr::keys::KeyPackage;

use crate::error::ThresholdError;
use crate::group::{GroupPublic, x_only};
use crate::sign::{Commitment, SigningNonces};

/// One signer's secret share of a group key.
///
/// It prints no secret (`Debug` shows the index and group key only), has no `Display`, is
/// zeroized on drop (the FROST key package it holds zeroizes itself), and is written to disk only
/// encrypted, as a [`ShareFile`](crate::ShareFile).
pub struct SignerShare {
    pub(crate) index: u16,
    pub(crate) key: KeyPackage,
}

impl fmt::Debug for SignerShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerShare")
            .field("index", &self.index)
            .field("group_pubkey", &self.group_pubkey())
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl SignerShare {
    pub(crate) fn new(index: u16, key: KeyPackage) -> Self {
        Self { index, key }
    }

    /// The signer's index in the group, from 1.
    pub fn index(&self) -> u16 {
        self.index
    }

    /// Signatures the group requires.
    pub fn threshold(&self) -> u16 {
        *self.key.min_signers()
    }

    /// The group key this share belongs to, as 64 hex characters.
    pub fn group_pubkey(&self) -> String {
        self.key
            .verifying_key()
            .serialize()
            .ok()
            .and_then(|c| x_only(&c).ok())
            .map(hex::encode)
            .unwrap_or_default()
    }

    /// Whether the share belongs to `group`: same group key, and its public share is the one the
    /// group lists for its index.
    pub fn belongs_to(&self, group: &GroupPublic) -> bool {
        self.key.verifying_key() == group.package.verifying_key()
            && crate::group::identifier(self.index)
                .ok()
                .and_then(|id| group.package.verifying_shares().get(&id).copied())
                .is_some_and(|share| share == *self.key.verifying_share())
    }

    pub(crate) fn check_group(&self, group: &GroupPublic) -> Result<(), ThresholdError> {
        if self.belongs_to(group) {
            Ok(())
        } else {
            Err(ThresholdError::WrongGroup {
                index: self.index,
                group_pubkey: group.group_pubkey(),
            })
        }
    }

    /// Round one of signing: fresh one-time nonces (kept by this signer) and their public
    /// commitment (sent to the coordinator).
    pub fn commit(&self) -> (SigningNonces, Commitment) {
        let (nonces, commitments) =
            frost_secp256k1_tr::round1::commit(self.key.signing_share(), &mut rand::rngs::OsRng);
        (
            SigningNonces {
                index: self.index,
                inner: nonces,
            },
            Commitment {
                index: self.index,
                inner: commitments,
            },
        )
    }

    /// The share's secret serialization, for encryption only.
    pub(crate) fn secret_bytes(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, ThresholdError> {
        self.key
            .serialize()
            .map(zeroize::Zeroizing::new)
            .map_err(ThresholdError::Frost)
    }

    pub(crate) fn from_secret_bytes(index: u16, bytes: &[u8]) -> Result<Self, ThresholdError> {
        let key = KeyPackage::deserialize(bytes).map_err(|e| ThresholdError::BadFile {
            what: "share",
            reason: e.to_string(),
        })?;
        if crate::group::identifier(index)? != *key.identifier() {
            return Err(ThresholdError::BadFile {
                what: "share",
                reason: format!("the file says signer {index} but holds another signer's share"),
            });
        }
        Ok(Self { index, key })
    }
}
