use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use frost_secp256k1_tr::round1::SigningCommitments;
use frost_secp256k1_tr::round2::SignatureShare;
use frost_secp256k1_tr::{Error as FrostError, SigningPackage};
use nostr::secp256k1::{Message, SECP256K1, XOnlyPublicKey, schnorr};

use crate::error::ThresholdError;
use crate::group::{GroupPublic, identifier, index_of};
use crate::share::SignerShare;

/// A signer's one-time nonces for one signing. Kept by the signer, never sent.
///
/// There is no `Clone`: [`SignerShare::sign`] takes them by value, so the type system ensures a
/// set of nonces signs at most once (reusing nonces would reveal the share). They print nothing
/// secret and are zeroized on drop.
pub struct SigningNonces {
    pub(crate) index: u16,
    pub(crate) inner: frost_secp256k1_tr::round1::SigningNonces,
}

impl fmt::Debug for SigningNonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningNonces")
            .field("index", &self.index)
            .field("nonces", &"<redacted>")
            .finish()
    }
}

/// A signer's public commitment to its nonces, sent to the coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commitment {
    pub(crate) index: u16,
    pub(crate) inner: SigningCommitments,
}

impl Commitment {
    /// The signer.
    pub fn index(&self) -> u16 {
        self.index
    }

    /// The commitment's bytes, for transport.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ThresholdError> {
        self.inner.serialize().map_err(ThresholdError::Frost)
    }

    /// Reads a commitment of signer `index` from transport bytes.
    pub fn from_bytes(index: u16, bytes: &[u8]) -> Result<Self, ThresholdError> {
        let inner =
            SigningCommitments::deserialize(bytes).map_err(|e| ThresholdError::Malformed {
                what: "commitment",
                reason: e.to_string(),
            })?;
        Ok(Self { index, inner })
    }
}

/// A signer's partial signature, sent to the coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialSignature {
    pub(crate) index: u16,
    pub(crate) inner: SignatureShare,
}

impl PartialSignature {
    /// The signer.
    pub fn index(&self) -> u16 {
        self.index
    }

    /// The partial's bytes, for transport.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.inner.serialize()
    }

    /// Reads a partial signature of signer `index` from transport bytes.
    pub fn from_bytes(index: u16, bytes: &[u8]) -> Result<Self, ThresholdError> {
        let inner = SignatureShare::deserialize(bytes).map_err(|e| ThresholdError::Malformed {
            what: "partial signature",
            reason: e.to_string(),
        })?;
        Ok(Self { index, inner })
    }
}

/// One signing: the message and the commitments of the signers taking part. It holds nothing
/// secret.
#[derive(Clone)]
pub struct SigningRequest {
    message: [u8; 32],
    package: SigningPackage,
    signers: BTreeSet<u16>,
}

impl fmt::Debug for SigningRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningRequest")
            .field("message", &hex::encode(self.message))
            .field("signers", &self.signers)
            .finish_non_exhaustive()
    }
}

impl SigningRequest {
    /// Gathers `commitments` for signing `message` with `group`. Needs at least the threshold of
    /// distinct signers of the group.
    pub fn new(
        group: &GroupPublic,
        message: [u8; 32],
        commitments: Vec<Commitment>,
    ) -> Result<Self, ThresholdError> {
        let mut signers = BTreeSet::new();
        let mut map = BTreeMap::new();
        for c in commitments {
            if !group.has_signer(c.index) {
                return Err(ThresholdError::WrongGroup {
                    index: c.index,
                    group_pubkey: group.group_pubkey(),
                });
            }
            if !signers.insert(c.index) {
                return Err(ThresholdError::DuplicateSigner { index: c.index });
            }
            map.insert(identifier(c.index)?, c.inner);
        }
        if signers.len() < usize::from(group.threshold) {
            return Err(ThresholdError::NotEnoughSigners {
                given: signers.len(),
                threshold: group.threshold,
            });
        }
        Ok(Self {
            message,
            package: SigningPackage::new(map, &message),
            signers,
        })
    }

    /// The message being signed.
    pub fn message(&self) -> &[u8; 32] {
        &self.message
    }

    /// The signers taking part.
    pub fn signers(&self) -> impl Iterator<Item = u16> + '_ {
        self.signers.iter().copied()
    }
}

impl SignerShare {
    /// Round two: this signer's partial signature for `request`, using (and consuming) the
    /// nonces it committed to.
    pub fn sign(
        &self,
        nonces: SigningNonces,
        request: &SigningRequest,
    ) -> Result<PartialSignature, ThresholdError> {
        if nonces.index != self.index {
            return Err(ThresholdError::Malformed {
                what: "nonces",
                reason: format!(
                    "signer {}'s nonces given to signer {}",
                    nonces.index, self.index
                ),
            });
        }
        if !request.signers.contains(&self.index) {
            return Err(ThresholdError::Malformed {
                what: "signing request",
                reason: format!("signer {} did not commit to this request", self.index),
            });
        }
        let inner = frost_secp256k1_tr::round2::sign(&request.package, &nonces.inner, &self.key)
            .map_err(ThresholdError::Frost)?;
        Ok(PartialSignature {
            index: self.index,
            inner,
        })
    }
}

/// Combines the partial signatures of every signer of `request` into one 64-byte BIP-340
/// signature under the group key. A bad partial is reported with its signer's index.
pub fn aggregate(
    group: &GroupPublic,
    request: &SigningRequest,
    partials: &[PartialSignature],
) -> Result<[u8; 64], ThresholdError> {
    let mut map = BTreeMap::new();
    for p in partials {
        if !request.signers.contains(&p.index) {
            return Err(ThresholdError::WrongGroup {
                index: p.index,
                group_pubkey: group.group_pubkey(),
            });
        }
        if map.insert(identifier(p.index)?, p.inner).is_some() {
            return Err(ThresholdError::DuplicateSigner { index: p.index });
        }
    }
    if let Some(missing) = request
        .signers
        .iter()
        .find(|i| identifier(**i).is_ok_and(|id| !map.contains_key(&id)))
    {
        return Err(ThresholdError::MissingPartial { index: *missing });
    }
    let signature = frost_secp256k1_tr::aggregate(&request.package, &map, &group.package).map_err(
        |e| match e {
            FrostError::InvalidSignatureShare { ref culprits } => culprits
                .first()
                .and_then(|c| index_of(c, group.total))
                .map_or_else(
                    || ThresholdError::Frost(e.clone()),
                    |index| ThresholdError::BadPartialSignature { index },
                ),
            other => ThresholdError::Frost(other),
        },
    )?;
    let bytes = signature.serialize().map_err(ThresholdError::Frost)?;
    let signature: [u8; 64] = bytes.try_into().map_err(|_| ThresholdError::Malformed {
        what: "signature",
        reason: "not 64 bytes".into(),
    })?;
    if !group.verify(&request.message, &signature) {
        return Err(ThresholdError::AggregateInvalid);
    }
    Ok(signature)
}

/// Signs `message` with shares held in one process: commits, signs and aggregates. Needs at
/// least the threshold of distinct shares of `group`.
pub fn sign_message(
    group: &GroupPublic,
    shares: &[&SignerShare],
    message: &[u8; 32],
) -> Result<[u8; 64], ThresholdError> {
    let mut seen = BTreeSet::new();
    for share in shares {
        share.check_group(group)?;
        if !seen.insert(share.index) {
            return Err(ThresholdError::DuplicateSigner { index: share.index });
        }
    }
    if shares.len() < usize::from(group.threshold) {
        return Err(ThresholdError::NotEnoughSigners {
            given: shares.len(),
            threshold: group.threshold,
        });
    }
    let (nonces, commitments): (Vec<_>, Vec<_>) = shares.iter().map(|s| s.commit()).unzip();
    let request = SigningRequest::new(group, *message, commitments)?;
    let partials = shares
        .iter()
        .zip(nonces)
        .map(|(share, nonces)| share.sign(nonces, &request))
        .collect::<Result<Vec<_>, _>>()?;
    aggregate(group, &request, &partials)
}

/// Whether `signature` is a valid BIP-340 signature of `message` under the x-only key `pubkey`,
/// checked by libsecp256k1.
pub fn verify_signature(pubkey: &[u8; 32], message: &[u8; 32], signature: &[u8; 64]) -> bool {
    let (Ok(key), Ok(sig)) = (
        XOnlyPublicKey::from_slice(pubkey),
        schnorr::Signature::from_slice(signature),
    ) else {
        return false;
    };
    SECP256K1
        .verify_schnorr(&sig, &Message::from_digest(*message), &key)
        .is_ok()
}
