use std::collections::{BTreeMap, BTreeSet};

use frost_secp256k1_tr::keys::dkg;
use frost_secp256k1_tr::keys::refresh::{
    compute_refreshing_shares, refresh_dkg_part1, refresh_dkg_part2, refresh_dkg_shares,
    refresh_share,
};
use frost_secp256k1_tr::keys::repairable::{
    repair_share_part1, repair_share_part2, repair_share_part3,
};
use frost_secp256k1_tr::keys::{KeyPackage, VerifyingShare};
use frost_secp256k1_tr::{Identifier, Secp256K1Sha256TR};
use rand::rngs::OsRng;

use crate::error::ThresholdError;
use crate::group::{GroupPublic, identifier};
use crate::keygen::{DkgRound1, DkgRound2};
use crate::share::SignerShare;

fn check_distinct_members(
    group: &GroupPublic,
    shares: &[&SignerShare],
) -> Result<(), ThresholdError> {
    let mut seen = BTreeSet::new();
    for share in shares {
        share.check_group(group)?;
        if !seen.insert(share.index) {
            return Err(ThresholdError::DuplicateSigner { index: share.index });
        }
    }
    Ok(())
}

/// Gives every signer a new share of the same group key: the npub stays, and old shares stop
/// combining with new ones, so a share stolen before the refresh is worth nothing after it.
///
/// Takes every signer's share (all `total` of them) and returns the new public side and shares.
/// The refresh adds shares of zero, drawn here; nobody learns the group key.
pub fn refresh_shares(
    group: &GroupPublic,
    shares: Vec<SignerShare>,
) -> Result<(GroupPublic, Vec<SignerShare>), ThresholdError> {
    let refs: Vec<&SignerShare> = shares.iter().collect();
    check_distinct_members(group, &refs)?;
    if shares.len() != usize::from(group.total) {
        return Err(ThresholdError::NotEnoughSigners {
            given: shares.len(),
            threshold: group.total,
        });
    }
    let mut shares = shares;
    shares.sort_by_key(|s| s.index);
    let ids = shares
        .iter()
        .map(|s| identifier(s.index))
        .collect::<Result<Vec<_>, _>>()?;
    let (zero_shares, package) = compute_refreshing_shares(group.package.clone(), &ids, &mut OsRng)
        .map_err(ThresholdError::Frost)?;
    let refreshed = GroupPublic::new(group.threshold, group.total, package)?;
    if refreshed.group_pubkey() != group.group_pubkey() {
        return Err(ThresholdError::RefreshChangedKey);
    }
    let new_shares = shares
        .iter()
        .zip(zero_shares)
        .map(|(share, zero)| {
            let key = refresh_share(zero, &share.key).map_err(ThresholdError::Frost)?;
            // FROST updates the secret share but keeps the old public share in the package:
            // rebuild it from the new secret, so the share describes itself truthfully.
            let verifying_share = VerifyingShare::from(*key.signing_share());
            let key = KeyPackage::new(
                *key.identifier(),
                *key.signing_share(),
                verifying_share,
                *key.verifying_key(),
                *key.min_signers(),
            );
            Ok(SignerShare::new(share.index, key))
        })
        .collect::<Result<Vec<_>, ThresholdError>>()?;
    for share in &new_shares {
        share.check_group(&refreshed)?;
    }
    Ok((refreshed, new_shares))
}

/// Rebuilds signer `lost`'s share from at least `threshold` other signers' shares, without any of
/// them revealing its own share or the group key.
pub fn repair_share(
    group: &GroupPublic,
    helpers: &[&SignerShare],
    lost: u16,
) -> Result<SignerShare, ThresholdError> {
    check_distinct_members(group, helpers)?;
    if !group.has_signer(lost) {
        return Err(ThresholdError::WrongGroup {
            index: lost,
            group_pubkey: group.group_pubkey(),
        });
    }
    if helpers.iter().any(|h| h.index == lost) {
        return Err(ThresholdError::DuplicateSigner { index: lost });
    }
    if helpers.len() < usize::from(group.threshold) {
        return Err(ThresholdError::NotEnoughSigners {
            given: helpers.len(),
            threshold: group.threshold,
        });
    }
    let helper_ids = helpers
        .iter()
        .map(|h| identifier(h.index))
        .collect::<Result<Vec<_>, _>>()?;
    let lost_id = identifier(lost)?;
    // Each helper splits its contribution into one delta per helper...
    let mut deltas_for: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for helper in helpers {
        let deltas = repair_share_part1::<Secp256K1Sha256TR, _>(
            &helper_ids,
            &helper.key,
            &mut OsRng,
            lost_id,
        )
        .map_err(ThresholdError::Frost)?;
        for (to, delta) in deltas {
            deltas_for.entry(to).or_default().push(delta);
        }
    }
    // ...each helper sums what it received into one sigma for the lost signer...
    let sigmas: Vec<_> = helper_ids
        .iter()
        .map(|id| repair_share_part2(deltas_for.get(id).map_or(&[][..], Vec::as_slice)))
        .collect();
    // ...and the lost signer adds the sigmas up into its share.
    let key =
        repair_share_part3(&sigmas, lost_id, &group.package).map_err(ThresholdError::Frost)?;
    let share = SignerShare::new(lost, key);
    share.check_group(group)?;
    Ok(share)
}

enum RefreshState {
    /// Between a failed step and the end: the participant can go no further.
    Spent,
    Round1(dkg::round1::SecretPackage),
    Round2 {
        secret: dkg::round2::SecretPackage,
        round1: BTreeMap<Identifier, dkg::round1::Package>,
    },
}

/// One signer's part of a distributed refresh, run on that signer's own machine: every signer
/// adds a fresh sharing of zero to its share, so the group key stays and old shares stop
/// combining with new ones. Nobody, not even a dealer, learns another signer's share.
///
/// The rounds are those of [`DkgParticipant`](crate::DkgParticipant): a [`DkgRound1`] broadcast,
/// one [`DkgRound2`] per other signer (sent to it alone, encrypted), then
/// [`finish`](RefreshParticipant::finish). Every signer of the group takes part.
pub struct RefreshParticipant {
    group: GroupPublic,
    share: SignerShare,
    state: RefreshState,
}

impl std::fmt::Debug for RefreshParticipant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshParticipant")
            .field("index", &self.share.index)
            .field("group_pubkey", &self.group.group_pubkey())
            .field("state", &"<redacted>")
            .finish()
    }
}

fn refresh_error(reason: String) -> ThresholdError {
    ThresholdError::Keygen { reason }
}

impl RefreshParticipant {
    /// Starts the refresh of `share`, a share of `group`: returns the round-one message to
    /// broadcast.
    pub fn new(
        group: &GroupPublic,
        share: SignerShare,
    ) -> Result<(Self, DkgRound1), ThresholdError> {
        share.check_group(group)?;
        let (secret, package) = refresh_dkg_part1(
            identifier(share.index)?,
            group.total,
            group.threshold,
            OsRng,
        )
        .map_err(ThresholdError::Frost)?;
        let message = DkgRound1::new(share.index, package);
        let participant = Self {
            group: group.clone(),
            share,
            state: RefreshState::Round1(secret),
        };
        Ok((participant, message))
    }

    /// This signer's index.
    pub fn index(&self) -> u16 {
        self.share.index
    }

    /// Takes every other signer's round-one message and returns the round-two messages to send.
    pub fn round2(&mut self, messages: &[DkgRound1]) -> Result<Vec<DkgRound2>, ThresholdError> {
        let RefreshState::Round1(secret) = std::mem::replace(&mut self.state, RefreshState::Spent)
        else {
            return Err(refresh_error("round two was already run".into()));
        };
        let round1 = crate::keygen::collect_round1(self.share.index, self.group.total, messages)?;
        let (secret2, packages) =
            refresh_dkg_part2(secret, &round1).map_err(ThresholdError::Frost)?;
        let mut out = Vec::with_capacity(packages.len());
        for to in (1..=self.group.total).filter(|i| *i != self.share.index) {
            let package = packages.get(&identifier(to)?).cloned().ok_or_else(|| {
                refresh_error(format!("no round-two message was made for signer {to}"))
            })?;
            out.push(DkgRound2::new(self.share.index, to, package));
        }
        self.state = RefreshState::Round2 {
            secret: secret2,
            round1,
        };
        Ok(out)
    }

    /// Takes the round-two messages addressed to this signer and returns the refreshed group
    /// (same group key, new public shares) and this signer's new share.
    pub fn finish(
        self,
        messages: &[DkgRound2],
    ) -> Result<(GroupPublic, SignerShare), ThresholdError> {
        let RefreshState::Round2 { secret, round1 } = self.state else {
            return Err(refresh_error("finish needs round two to have run".into()));
        };
        let received = crate::keygen::collect_round2(self.share.index, round1.len(), messages)?;
        let (key, package) = refresh_dkg_shares(
            &secret,
            &round1,
            &received,
            self.group.package.clone(),
            self.share.key.clone(),
        )
        .map_err(|e| refresh_error(format!("a signer sent an invalid refresh share: {e}")))?;
        let refreshed = GroupPublic::new(self.group.threshold, self.group.total, package)?;
        if refreshed.group_pubkey() != self.group.group_pubkey() {
            return Err(ThresholdError::RefreshChangedKey);
        }
        let share = SignerShare::new(self.share.index, key);
        share.check_group(&refreshed)?;
        Ok((refreshed, share))
    }
}
