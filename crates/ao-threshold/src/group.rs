use std::fmt;

use ao_identity::ThresholdConfig;
use frost_secp256k1_tr::Identifier;
use frost_secp256k1_tr::keys::PublicKeyPackage;
use nostr::PublicKey;

use crate::error::ThresholdError;

/// The FROST identifier of signer `index` (1-based).
pub(crate) fn identifier(index: u16) -> Result<Identifier, ThresholdError> {
    Identifier::try_from(index).map_err(ThresholdError::Frost)
}

/// The signer index of `id`, among `1..=total`.
pub(crate) fn index_of(id: &Identifier, total: u16) -> Option<u16> {
    (1..=total).find(|i| Identifier::try_from(*i).ok().as_ref() == Some(id))
}

/// The x-only (32-byte) form of a compressed point.
pub(crate) fn x_only(compressed: &[u8]) -> Result<[u8; 32], ThresholdError> {
    compressed
        .get(1..33)
        .and_then(|x| <[u8; 32]>::try_from(x).ok())
        .ok_or_else(|| ThresholdError::Malformed {
            what: "public key",
            reason: format!(
                "{} bytes, expected a 33-byte compressed point",
                compressed.len()
            ),
        })
}

/// The public side of a threshold group: its group key, its signers' public shares, and the
/// threshold. Safe to share with anyone; everything a coordinator needs to aggregate and verify.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupPublic {
    pub(crate) threshold: u16,
    pub(crate) total: u16,
    pub(crate) package: PublicKeyPackage,
}

impl fmt::Debug for GroupPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupPublic")
            .field("threshold", &self.threshold)
            .field("total", &self.total)
            .field("group_pubkey", &self.group_pubkey())
            .finish()
    }
}

impl GroupPublic {
    pub(crate) fn new(
        threshold: u16,
        total: u16,
        package: PublicKeyPackage,
    ) -> Result<Self, ThresholdError> {
        let group = Self {
            threshold,
            total,
            package,
        };
        group.group_key_bytes()?;
        Ok(group)
    }

    /// Signatures required.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// Signers in the group.
    pub fn total(&self) -> u16 {
        self.total
    }

    pub(crate) fn group_key_bytes(&self) -> Result<[u8; 32], ThresholdError> {
        let compressed = self
            .package
            .verifying_key()
            .serialize()
            .map_err(ThresholdError::Frost)?;
        x_only(&compressed)
    }

    /// The group's x-only public key: the agent's Nostr key.
    pub fn public_key(&self) -> PublicKey {
        // `new` checked that the key serializes.
        PublicKey::from_byte_array(self.group_key_bytes().unwrap_or_default())
    }

    /// The group key as 64 lowercase hex characters.
    pub fn group_pubkey(&self) -> String {
        self.public_key().to_hex()
    }

    /// Each signer's public share as an x-only key (64 hex characters), by signer index.
    pub fn signer_pubkeys(&self) -> Vec<String> {
        (1..=self.total)
            .filter_map(|i| {
                let id = identifier(i).ok()?;
                let share = self.package.verifying_shares().get(&id)?;
                let compressed = share.serialize().ok()?;
                x_only(&compressed).ok().map(hex::encode)
            })
            .collect()
    }

    /// The [`ThresholdConfig`] describing this group, with real keys: it passes
    /// [`ThresholdConfig::validate`].
    pub fn threshold_config(&self) -> ThresholdConfig {
        ThresholdConfig::new(u32::from(self.threshold), u32::from(self.total))
            .with_signers(self.signer_pubkeys())
            .with_group_pubkey(self.group_pubkey())
    }

    /// Whether `signature` is a valid BIP-340 signature of `message` by the group key, checked
    /// by libsecp256k1 (not by the FROST code that made it).
    pub fn verify(&self, message: &[u8; 32], signature: &[u8; 64]) -> bool {
        self.group_key_bytes()
            .is_ok_and(|key| crate::sign::verify_signature(&key, message, signature))
    }

    /// Whether signer `index` belongs to the group.
    pub(crate) fn has_signer(&self, index: u16) -> bool {
        identifier(index).is_ok_and(|id| self.package.verifying_shares().contains_key(&id))
    }
}
