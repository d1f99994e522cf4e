//! Key generation: a trusted dealer, the split of an existing key, or distributed key generation
//! (one [`DkgParticipant`] per signer, or a whole [`KeygenSession`] in one process).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use frost_secp256k1_tr::keys::dkg::{self, round1, round2};
use frost_secp256k1_tr::keys::{self, IdentifierList, KeyPackage};
use frost_secp256k1_tr::{Identifier, SigningKey};
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::ThresholdError;
use crate::group::{GroupPublic, identifier};
use crate::share::SignerShare;

/// The shape of a group: `threshold` of `total` signers sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeygenConfig {
    /// Signatures required (at least 2: a 1-of-n key is one key held n times).
    pub threshold: u16,
    /// Signers holding a share.
    pub total: u16,
}

impl KeygenConfig {
    fn check(&self) -> Result<(), ThresholdError> {
        if self.threshold < 2 || self.threshold > self.total {
            return Err(ThresholdError::InvalidConfig {
                threshold: u32::from(self.threshold),
                total: u32::from(self.total),
            });
        }
        Ok(())
    }
}

fn shares_from(
    config: KeygenConfig,
    secret_shares: BTreeMap<Identifier, keys::SecretShare>,
) -> Result<Vec<SignerShare>, ThresholdError> {
    (1..=config.total)
        .map(|i| {
            let secret = secret_shares.get(&identifier(i)?).cloned().ok_or_else(|| {
                ThresholdError::Keygen {
                    reason: format!("no share was made for signer {i}"),
                }
            })?;
            let key = KeyPackage::try_from(secret).map_err(ThresholdError::Frost)?;
            Ok(SignerShare::new(i, key))
        })
        .collect()
}

/// A fresh `threshold`-of-`total` key from a trusted dealer: this process draws the key, splits
/// it, and forgets it. Prefer [`KeygenSession`] (or [`DkgParticipant`] across machines), in which
/// the whole key never exists anywhere.
pub fn generate_with_dealer(
    config: KeygenConfig,
) -> Result<(GroupPublic, Vec<SignerShare>), ThresholdError> {
    config.check()?;
    let (secret_shares, package) = keys::generate_with_dealer(
        config.total,
        config.threshold,
        IdentifierList::Default,
        OsRng,
    )
    .map_err(ThresholdError::Frost)?;
    let group = GroupPublic::new(config.threshold, config.total, package)?;
    Ok((group, shares_from(config, secret_shares)?))
}

/// Splits an existing Nostr secret key (an nsec or 64 hex characters) into shares. The group key
/// is that key's npub, so the agent keeps its identity. The caller should destroy every other copy
/// of the secret key afterwards.
pub fn split_secret_key(
    secret_key: &str,
    config: KeygenConfig,
) -> Result<(GroupPublic, Vec<SignerShare>), ThresholdError> {
    config.check()?;
    let secret =
        nostr::SecretKey::parse(secret_key.trim()).map_err(|_| ThresholdError::InvalidSecretKey)?;
    let bytes = Zeroizing::new(secret.to_secret_bytes());
    let signing_key =
        SigningKey::deserialize(bytes.as_slice()).map_err(|_| ThresholdError::InvalidSecretKey)?;
    let (secret_shares, package) = keys::split(
        &signing_key,
        config.total,
        config.threshold,
        IdentifierList::Default,
        &mut OsRng,
    )
    .map_err(ThresholdError::Frost)?;
    let group = GroupPublic::new(config.threshold, config.total, package)?;
    Ok((group, shares_from(config, secret_shares)?))
}

/// Round one of distributed key generation: broadcast by participant `from` to all others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkgRound1 {
    /// The sender.
    pub from: u16,
    package: round1::Package,
}

impl DkgRound1 {
    pub(crate) fn new(from: u16, package: round1::Package) -> Self {
        Self { from, package }
    }

    /// The message's bytes, for transport.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ThresholdError> {
        self.package.serialize().map_err(ThresholdError::Frost)
    }

    /// Reads a round-one message of participant `from`.
    pub fn from_bytes(from: u16, bytes: &[u8]) -> Result<Self, ThresholdError> {
        let package = round1::Package::deserialize(bytes).map_err(|e| ThresholdError::Keygen {
            reason: format!("round-one message of participant {from}: {e}"),
        })?;
        Ok(Self { from, package })
    }
}

/// Round two of distributed key generation: sent by `from` to `to` alone, over a confidential
/// and authenticated channel (it carries a secret share for `to`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkgRound2 {
    /// The sender.
    pub from: u16,
    /// The recipient.
    pub to: u16,
    package: round2::Package,
}

impl DkgRound2 {
    pub(crate) fn new(from: u16, to: u16, package: round2::Package) -> Self {
        Self { from, to, package }
    }

    /// The message's bytes, for transport. They carry a secret share for `to`: send them only
    /// encrypted to `to`, and let them be zeroized after use.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, ThresholdError> {
        self.package
            .serialize()
            .map(Zeroizing::new)
            .map_err(ThresholdError::Frost)
    }

    /// Reads a round-two message sent by participant `from` to participant `to`.
    pub fn from_bytes(from: u16, to: u16, bytes: &[u8]) -> Result<Self, ThresholdError> {
        let package = round2::Package::deserialize(bytes).map_err(|e| ThresholdError::Keygen {
            reason: format!("round-two message of participant {from}: {e}"),
        })?;
        Ok(Self { from, to, package })
    }
}

/// The round-one messages of every participant other than `me`, by identifier: exactly one from
/// each of the `total - 1` others.
pub(crate) fn collect_round1(
    me: u16,
    total: u16,
    messages: &[DkgRound1],
) -> Result<BTreeMap<Identifier, round1::Package>, ThresholdError> {
    let mut packages = BTreeMap::new();
    for m in messages.iter().filter(|m| m.from != me) {
        if m.from == 0 || m.from > total {
            return Err(ThresholdError::Keygen {
                reason: format!(
                    "a message from participant {} who is not in the ceremony",
                    m.from
                ),
            });
        }
        if packages
            .insert(identifier(m.from)?, m.package.clone())
            .is_some()
        {
            return Err(ThresholdError::Keygen {
                reason: format!("two round-one messages from participant {}", m.from),
            });
        }
    }
    let expected = usize::from(total) - 1;
    if packages.len() != expected {
        return Err(ThresholdError::Keygen {
            reason: format!(
                "{} round-one messages from other participants, expected {expected}",
                packages.len()
            ),
        });
    }
    Ok(packages)
}

/// The round-two messages addressed to `me`, by sender: exactly `expected` of them, one per
/// sender.
pub(crate) fn collect_round2(
    me: u16,
    expected: usize,
    messages: &[DkgRound2],
) -> Result<BTreeMap<Identifier, round2::Package>, ThresholdError> {
    let mut received = BTreeMap::new();
    let mut senders = BTreeSet::new();
    for m in messages.iter().filter(|m| m.to == me) {
        if !senders.insert(m.from) {
            return Err(ThresholdError::Keygen {
                reason: format!("two round-two messages from participant {}", m.from),
            });
        }
        received.insert(identifier(m.from)?, m.package.clone());
    }
    if received.len() != expected {
        return Err(ThresholdError::Keygen {
            reason: format!(
                "{} round-two messages for participant {me}, expected {expected}",
                received.len()
            ),
        });
    }
    Ok(received)
}

enum DkgState {
    /// Between a failed step and the end: the participant can go no further.
    Spent,
    Round1(round1::SecretPackage),
    Round2 {
        secret: round2::SecretPackage,
        round1: BTreeMap<Identifier, round1::Package>,
    },
}

/// One participant of a distributed key generation, run on that participant's own machine.
///
/// 1. [`DkgParticipant::new`] gives a [`DkgRound1`] to broadcast.
/// 2. With every other participant's round-one message, [`round2`](DkgParticipant::round2) gives
///    one [`DkgRound2`] per other participant, each to be sent to its recipient alone.
/// 3. With the round-two messages addressed to it, [`finish`](DkgParticipant::finish) gives the
///    participant's [`SignerShare`] and the group's public side.
///
/// No participant ever learns the group's secret key.
pub struct DkgParticipant {
    config: KeygenConfig,
    index: u16,
    state: DkgState,
}

impl fmt::Debug for DkgParticipant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkgParticipant")
            .field("config", &self.config)
            .field("index", &self.index)
            .field("state", &"<redacted>")
            .finish()
    }
}

impl DkgParticipant {
    /// Participant `index` (1-based) of a ceremony shaped by `config`.
    pub fn new(config: KeygenConfig, index: u16) -> Result<(Self, DkgRound1), ThresholdError> {
        config.check()?;
        if index == 0 || index > config.total {
            return Err(ThresholdError::Keygen {
                reason: format!("participant {index} is not in 1..={}", config.total),
            });
        }
        let (secret, package) =
            dkg::part1(identifier(index)?, config.total, config.threshold, OsRng)
                .map_err(ThresholdError::Frost)?;
        Ok((
            Self {
                config,
                index,
                state: DkgState::Round1(secret),
            },
            DkgRound1 {
                from: index,
                package,
            },
        ))
    }

    /// This participant's index.
    pub fn index(&self) -> u16 {
        self.index
    }

    /// Takes every other participant's round-one message (this participant's own, if present, is
    /// ignored) and returns the round-two messages to send.
    pub fn round2(&mut self, messages: &[DkgRound1]) -> Result<Vec<DkgRound2>, ThresholdError> {
        if !matches!(self.state, DkgState::Round1(_)) {
            return Err(ThresholdError::Keygen {
                reason: "round two was already run".into(),
            });
        }
        let round1_packages = collect_round1(self.index, self.config.total, messages)?;
        let DkgState::Round1(secret) = std::mem::replace(&mut self.state, DkgState::Spent) else {
            return Err(ThresholdError::Keygen {
                reason: "round two was already run".into(),
            });
        };
        let (secret2, packages) =
            dkg::part2(secret, &round1_packages).map_err(ThresholdError::Frost)?;
        let mut out = Vec::with_capacity(packages.len());
        for to in (1..=self.config.total).filter(|i| *i != self.index) {
            let package =
                packages
                    .get(&identifier(to)?)
                    .cloned()
                    .ok_or_else(|| ThresholdError::Keygen {
                        reason: format!("no round-two message was made for participant {to}"),
                    })?;
            out.push(DkgRound2 {
                from: self.index,
                to,
                package,
            });
        }
        self.state = DkgState::Round2 {
            secret: secret2,
            round1: round1_packages,
        };
        Ok(out)
    }

    /// Takes the round-two messages addressed to this participant and returns its share and the
    /// group's public side.
    pub fn finish(
        self,
        messages: &[DkgRound2],
    ) -> Result<(GroupPublic, SignerShare), ThresholdError> {
        let DkgState::Round2 { secret, round1 } = self.state else {
            return Err(ThresholdError::Keygen {
                reason: "finish needs round two to have run".into(),
            });
        };
        let received = collect_round2(self.index, round1.len(), messages)?;
        let (key, package) =
            dkg::part3(&secret, &round1, &received).map_err(|e| ThresholdError::Keygen {
                reason: match e.culprits().first() {
                    Some(c) => format!(
                        "participant {} sent an invalid share: {e}",
                        crate::group::index_of(c, self.config.total).unwrap_or(0)
                    ),
                    None => e.to_string(),
                },
            })?;
        let group = GroupPublic::new(self.config.threshold, self.config.total, package)?;
        Ok((group, SignerShare::new(self.index, key)))
    }
}

/// A whole distributed key generation run in one process, one [`DkgParticipant`] per signer, as
/// the spec's sample shows:
///
/// ```
/// use ao_threshold::{KeygenConfig, KeygenSession};
/// use ao_identity::ThresholdConfig;
///
/// let keygen = KeygenSession::new(KeygenConfig { threshold: 2, total: 3 });
/// let shares = keygen.complete()?;
/// let config = ThresholdConfig::new(2, 3)
///     .with_signers(shares.signer_pubkeys())
///     .with_group_pubkey(shares.group_pubkey());
/// assert!(config.validate().is_ok());
/// # Ok::<(), ao_threshold::ThresholdError>(())
/// ```
///
/// The group's secret key is never computed; each share is a separate value. For signers on
/// different machines, run a [`DkgParticipant`] on each.
#[derive(Debug, Clone, Copy)]
pub struct KeygenSession {
    config: KeygenConfig,
}

impl KeygenSession {
    /// A ceremony shaped by `config`. Nothing runs until [`complete`](KeygenSession::complete).
    pub fn new(config: KeygenConfig) -> Self {
        Self { config }
    }

    /// Runs every participant through both rounds, exchanging their messages, and returns the
    /// shares.
    pub fn complete(self) -> Result<KeygenOutput, ThresholdError> {
        self.config.check()?;
        let mut participants = Vec::with_capacity(usize::from(self.config.total));
        let mut round1 = Vec::with_capacity(participants.capacity());
        for i in 1..=self.config.total {
            let (p, m) = DkgParticipant::new(self.config, i)?;
            participants.push(p);
            round1.push(m);
        }
        let mut round2 = Vec::new();
        for p in &mut participants {
            round2.extend(p.round2(&round1)?);
        }
        let mut group: Option<GroupPublic> = None;
        let mut shares = Vec::with_capacity(participants.len());
        for p in participants {
            let (g, share) = p.finish(&round2)?;
            match &group {
                Some(first) if *first != g => {
                    return Err(ThresholdError::Keygen {
                        reason: "participants disagree on the group key".into(),
                    });
                }
                Some(_) => {}
                None => group = Some(g),
            }
            shares.push(share);
        }
        let group = group.ok_or_else(|| ThresholdError::Keygen {
            reason: "no participant".into(),
        })?;
        Ok(KeygenOutput { group, shares })
    }
}

/// What a key generation produced: the group's public side and one share per signer.
#[derive(Debug)]
pub struct KeygenOutput {
    /// The group's public side.
    pub group: GroupPublic,
    /// One share per signer, by index.
    pub shares: Vec<SignerShare>,
}

impl KeygenOutput {
    /// Each signer's public share as an x-only key, by index.
    pub fn signer_pubkeys(&self) -> Vec<String> {
        self.group.signer_pubkeys()
    }

    /// The group key as 64 hex characters.
    pub fn group_pubkey(&self) -> String {
        self.group.group_pubkey()
    }
}
