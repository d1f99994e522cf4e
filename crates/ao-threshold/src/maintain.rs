use std::collections::{BTreeMap, BTreeSet};

use frost_secp256k1_tr::Secp256K1Sha256TR;
use frost_secp256k1_tr::keys::refresh::{compute_refreshing_shares, refresh_share};
use frost_secp256k1_tr::keys::repairable::{
    repair_share_part1, repair_share_part2, repair_share_part3,
};
use frost_secp256k1_tr::keys::{KeyPackage, VerifyingShare};
use rand::rngs::OsRng;

use crate::error::ThresholdError;
use crate::group::{GroupPublic, identifier};
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
