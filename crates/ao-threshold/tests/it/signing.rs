use ao_threshold::{
    DkgParticipant, DkgRound1, DkgRound2, GroupPublic, KeygenConfig, KeygenSession,
    RefreshParticipant, SignerShare, SigningRequest, ThresholdError, aggregate,
    generate_with_dealer, refresh_shares, repair_share, sign_message, split_secret_key,
};
use nostr::{Keys, ToBech32};

use crate::bip340_valid;

fn config(threshold: u16, total: u16) -> KeygenConfig {
    KeygenConfig { threshold, total }
}

fn check_signs(group: &GroupPublic, shares: &[&SignerShare]) {
    let message: [u8; 32] = rand::random();
    let signature = sign_message(group, shares, &message).unwrap();
    assert!(
        bip340_valid(group, &message, &signature),
        "libsecp256k1 rejects the signature"
    );
    let mut other = message;
    other[0] ^= 1;
    assert!(
        !bip340_valid(group, &other, &signature),
        "the signature verifies for another message"
    );
}

#[test]
fn dealer_keys_sign_standard_bip340_signatures() {
    let (group, shares) = generate_with_dealer(config(2, 3)).unwrap();
    assert_eq!(group.group_pubkey().len(), 64);
    group.threshold_config().validate().unwrap();
    check_signs(&group, &[&shares[0], &shares[1]]);
    check_signs(&group, &[&shares[2], &shares[0]]);
    check_signs(&group, &[&shares[0], &shares[1], &shares[2]]);
}

#[test]
fn a_split_nsec_keeps_its_npub_for_odd_and_even_y() {
    let mut seen = [false, false];
    while seen != [true, true] {
        let keys = Keys::generate();
        let (_, parity) = keys.secret_key().x_only_public_key(&Secp256k1::new());
        let odd = parity == nostr::secp256k1::Parity::Odd;
        if seen[usize::from(odd)] {
            continue;
        }
        seen[usize::from(odd)] = true;
        let nsec = keys.secret_key().to_bech32().unwrap();
        let (group, shares) = split_secret_key(&nsec, config(2, 3)).unwrap();
        assert_eq!(group.public_key(), keys.public_key(), "odd y: {odd}");
        check_signs(&group, &[&shares[1], &shares[2]]);
        // Hex works as well as nsec.
        let (group, _) =
            split_secret_key(&keys.secret_key().to_secret_hex(), config(3, 5)).unwrap();
        assert_eq!(group.group_pubkey(), keys.public_key().to_hex());
    }
    use nostr::secp256k1::Secp256k1;
}

#[test]
fn distributed_keygen_as_the_spec_shows() {
    let keygen = KeygenSession::new(KeygenConfig {
        threshold: 2,
        total: 3,
    });
    let shares = keygen.complete().unwrap();
    let config = ao_identity::ThresholdConfig::new(2, 3)
        .with_signers(shares.signer_pubkeys())
        .with_group_pubkey(shares.group_pubkey());
    config.validate().unwrap();
    check_signs(&shares.group, &[&shares.shares[0], &shares.shares[2]]);
}

#[test]
fn distributed_keygen_across_participants_exchanging_bytes() {
    let cfg = config(2, 3);
    let mut participants = Vec::new();
    let mut wire = Vec::new();
    for i in 1..=3 {
        let (p, m) = DkgParticipant::new(cfg, i).unwrap();
        wire.push((m.from, m.to_bytes().unwrap()));
        participants.push(p);
    }
    let round1: Vec<DkgRound1> = wire
        .iter()
        .map(|(from, b)| DkgRound1::from_bytes(*from, b).unwrap())
        .collect();
    let round2: Vec<_> = participants
        .iter_mut()
        .flat_map(|p| p.round2(&round1).unwrap())
        .collect();
    assert_eq!(round2.len(), 6);
    let mut outputs: Vec<(GroupPublic, SignerShare)> = participants
        .into_iter()
        .map(|p| p.finish(&round2).unwrap())
        .collect();
    assert!(outputs.iter().all(|(g, _)| *g == outputs[0].0));
    let (group, share3) = outputs.pop().unwrap();
    let (_, share2) = outputs.pop().unwrap();
    check_signs(&group, &[&share2, &share3]);
}

#[test]
fn keygen_refuses_bad_ceremonies() {
    assert!(matches!(
        KeygenSession::new(config(1, 3)).complete(),
        Err(ThresholdError::InvalidConfig { .. })
    ));
    assert!(matches!(
        KeygenSession::new(config(4, 3)).complete(),
        Err(ThresholdError::InvalidConfig { .. })
    ));
    assert!(matches!(
        DkgParticipant::new(config(2, 3), 4),
        Err(ThresholdError::Keygen { .. })
    ));
    let (mut p1, m1) = DkgParticipant::new(config(2, 3), 1).unwrap();
    let (_, m2) = DkgParticipant::new(config(2, 3), 2).unwrap();
    // Participant 3's message is missing; participant 2's is there twice.
    let err = p1.round2(&[m1, m2.clone(), m2]).unwrap_err();
    assert!(
        err.to_string()
            .contains("two round-one messages from participant 2"),
        "{err}"
    );
}

#[test]
fn every_three_of_five_subset_signs() {
    let (group, shares) = generate_with_dealer(config(3, 5)).unwrap();
    let mut subsets = 0;
    for a in 0..5 {
        for b in a + 1..5 {
            for c in b + 1..5 {
                check_signs(&group, &[&shares[a], &shares[b], &shares[c]]);
                subsets += 1;
            }
        }
    }
    assert_eq!(subsets, 10);
    let keygen = KeygenSession::new(config(3, 5)).complete().unwrap();
    check_signs(
        &keygen.group,
        &[&keygen.shares[4], &keygen.shares[0], &keygen.shares[2]],
    );
}

#[test]
fn refresh_keeps_the_group_key_and_retires_old_shares() {
    for (group, shares) in [generate_with_dealer(config(2, 3)).unwrap(), {
        let out = KeygenSession::new(config(2, 3)).complete().unwrap();
        (out.group, out.shares)
    }] {
        let old_second = ao_threshold::ShareFile::seal(
            &shares[1],
            "p",
            ao_threshold::KdfParams {
                memory_kib: 8,
                iterations: 1,
                parallelism: 1,
            },
        )
        .unwrap()
        .open("p")
        .unwrap();
        let (refreshed, new_shares) = refresh_shares(&group, shares).unwrap();
        assert_eq!(refreshed.group_pubkey(), group.group_pubkey());
        assert_ne!(refreshed.signer_pubkeys(), group.signer_pubkeys());
        check_signs(&refreshed, &[&new_shares[0], &new_shares[1]]);
        check_signs(&refreshed, &[&new_shares[2], &new_shares[1]]);
        // An old share no longer belongs to the refreshed group.
        let err = sign_message(&refreshed, &[&new_shares[0], &old_second], &[7; 32]).unwrap_err();
        assert!(
            matches!(err, ThresholdError::WrongGroup { index: 2, .. }),
            "{err}"
        );
    }
}

#[test]
fn a_lost_share_is_repaired_from_t_others() {
    let out = KeygenSession::new(config(3, 5)).complete().unwrap();
    let s = &out.shares;
    let repaired = repair_share(&out.group, &[&s[0], &s[2], &s[4]], 2).unwrap();
    assert_eq!(repaired.index(), 2);
    assert!(repaired.belongs_to(&out.group));
    check_signs(&out.group, &[&repaired, &s[3], &s[4]]);
    assert!(matches!(
        repair_share(&out.group, &[&s[0], &s[2]], 2),
        Err(ThresholdError::NotEnoughSigners {
            given: 2,
            threshold: 3
        })
    ));
    assert!(repair_share(&out.group, &[&s[0], &s[1], &s[2]], 2).is_err());

    let (group, shares) = generate_with_dealer(config(2, 3)).unwrap();
    let repaired = repair_share(&group, &[&shares[1], &shares[2]], 1).unwrap();
    check_signs(&group, &[&repaired, &shares[2]]);
}

#[test]
fn signing_refuses_too_few_foreign_or_duplicate_signers() {
    let (group, shares) = generate_with_dealer(config(2, 3)).unwrap();
    let (_, strangers) = generate_with_dealer(config(2, 3)).unwrap();
    let msg = [1u8; 32];
    assert!(matches!(
        sign_message(&group, &[&shares[0]], &msg),
        Err(ThresholdError::NotEnoughSigners {
            given: 1,
            threshold: 2
        })
    ));
    assert!(matches!(
        sign_message(&group, &[&shares[0], &strangers[1]], &msg),
        Err(ThresholdError::WrongGroup { index: 2, .. })
    ));
    assert!(matches!(
        sign_message(&group, &[&shares[0], &shares[0]], &msg),
        Err(ThresholdError::DuplicateSigner { index: 1 })
    ));
    let err = sign_message(&group, &[&shares[0]], &msg).unwrap_err();
    assert_eq!(
        err.to_string(),
        "1 signer(s) given but this group needs 2 to sign"
    );
}

#[test]
fn a_tampered_partial_signature_names_its_signer() {
    let (group, shares) = generate_with_dealer(config(2, 3)).unwrap();
    let (n1, c1) = shares[0].commit();
    let (n3, c3) = shares[2].commit();
    let request = SigningRequest::new(&group, [9; 32], vec![c1, c3]).unwrap();
    let p1 = shares[0].sign(n1, &request).unwrap();
    let p3 = shares[2].sign(n3, &request).unwrap();
    // Signer 3 sends the partial of another signing: a valid scalar, the wrong one.
    let (n3b, c3b) = shares[2].commit();
    let (n1b, c1b) = shares[0].commit();
    let other = SigningRequest::new(&group, [8; 32], vec![c1b, c3b]).unwrap();
    let wrong = shares[2].sign(n3b, &other).unwrap();
    drop(n1b);
    let forged = ao_threshold::PartialSignature::from_bytes(3, &wrong.to_bytes()).unwrap();
    let err = aggregate(&group, &request, &[p1.clone(), forged]).unwrap_err();
    assert!(
        matches!(err, ThresholdError::BadPartialSignature { index: 3 }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "the partial signature of signer 3 is invalid"
    );
    // Flipped bytes are caught too: either as malformed or as a bad partial of signer 3.
    let mut bytes = p3.to_bytes();
    bytes[31] ^= 0x01;
    match ao_threshold::PartialSignature::from_bytes(3, &bytes) {
        Ok(flipped) => assert!(matches!(
            aggregate(&group, &request, &[p1.clone(), flipped]),
            Err(ThresholdError::BadPartialSignature { index: 3 })
        )),
        Err(e) => assert!(matches!(e, ThresholdError::Malformed { .. })),
    }
    assert!(matches!(
        aggregate(&group, &request, std::slice::from_ref(&p1)),
        Err(ThresholdError::MissingPartial { index: 3 })
    ));
    let signature = aggregate(&group, &request, &[p1, p3]).unwrap();
    assert!(bip340_valid(&group, &[9; 32], &signature));
}

#[test]
fn nonces_of_one_signer_cannot_sign_for_another() {
    let (group, shares) = generate_with_dealer(config(2, 3)).unwrap();
    let (n1, c1) = shares[0].commit();
    let (_n2, c2) = shares[1].commit();
    let request = SigningRequest::new(&group, [5; 32], vec![c1, c2]).unwrap();
    assert!(shares[1].sign(n1, &request).is_err());
    // `shares[0].sign(n1, ...)` again would not compile: `n1` was moved by the call above.
}

/// Runs a distributed refresh of `shares` as separate participants exchanging bytes.
fn refresh_over_the_wire(
    group: &GroupPublic,
    shares: Vec<SignerShare>,
) -> Vec<(GroupPublic, SignerShare)> {
    let mut participants = Vec::new();
    let mut round1 = Vec::new();
    for share in shares {
        let (p, m) = RefreshParticipant::new(group, share).unwrap();
        round1.push(DkgRound1::from_bytes(m.from, &m.to_bytes().unwrap()).unwrap());
        participants.push(p);
    }
    let round2: Vec<DkgRound2> = participants
        .iter_mut()
        .flat_map(|p| p.round2(&round1).unwrap())
        .map(|m| DkgRound2::from_bytes(m.from, m.to, &m.to_bytes().unwrap()).unwrap())
        .collect();
    participants
        .into_iter()
        .map(|p| p.finish(&round2).unwrap())
        .collect()
}

#[test]
fn a_distributed_refresh_keeps_the_group_key_and_retires_old_shares() {
    let out = KeygenSession::new(config(2, 3)).complete().unwrap();
    let (group, shares) = (out.group, out.shares);
    let stale = refresh_over_the_wire(&group, generate_copy(&shares));
    let outputs = refresh_over_the_wire(&group, shares);
    let refreshed = outputs[0].0.clone();
    assert!(outputs.iter().all(|(g, _)| *g == refreshed));
    assert_eq!(refreshed.group_pubkey(), group.group_pubkey());
    assert_ne!(refreshed.signer_pubkeys(), group.signer_pubkeys());
    check_signs(&refreshed, &[&outputs[0].1, &outputs[2].1]);
    check_signs(&refreshed, &[&outputs[1].1, &outputs[2].1]);
    // A share of another refresh of the same group does not combine with these.
    let err = sign_message(&refreshed, &[&outputs[0].1, &stale[1].1], &[7; 32]).unwrap_err();
    assert!(
        matches!(err, ThresholdError::WrongGroup { index: 2, .. }),
        "{err}"
    );
}

/// Copies of `shares`, through their sealed form.
fn generate_copy(shares: &[SignerShare]) -> Vec<SignerShare> {
    let fast = ao_threshold::KdfParams {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };
    shares
        .iter()
        .map(|s| {
            ao_threshold::ShareFile::seal(s, "p", fast)
                .unwrap()
                .open("p")
                .unwrap()
        })
        .collect()
}

#[test]
fn a_distributed_refresh_refuses_a_tampered_refresh_share() {
    let out = KeygenSession::new(config(2, 3)).complete().unwrap();
    let group = out.group;
    let mut participants = Vec::new();
    let mut round1 = Vec::new();
    for share in out.shares {
        let (p, m) = RefreshParticipant::new(&group, share).unwrap();
        round1.push(m);
        participants.push(p);
    }
    let mut round2: Vec<DkgRound2> = participants
        .iter_mut()
        .flat_map(|p| p.round2(&round1).unwrap())
        .collect();
    // Participant 1 sends participant 2 the share it meant for participant 3.
    let for_three = round2
        .iter()
        .position(|m| m.from == 1 && m.to == 3)
        .unwrap();
    let bytes = round2[for_three].to_bytes().unwrap();
    let forged = DkgRound2::from_bytes(1, 2, &bytes).unwrap();
    round2.retain(|m| !(m.from == 1 && m.to == 2));
    round2.push(forged);
    let second = participants.remove(1);
    let err = second.finish(&round2).unwrap_err();
    assert!(matches!(err, ThresholdError::Keygen { .. }), "{err}");
}
