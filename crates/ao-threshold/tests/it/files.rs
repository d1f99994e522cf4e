use ao_threshold::{
    GroupFile, KdfParams, KeygenConfig, ShareFile, ThresholdError, generate_with_dealer,
    sign_message,
};
use proptest::prelude::*;

use crate::bip340_valid;

/// Cheap key derivation for tests that open many files; the CLI tests use the real defaults.
const FAST: KdfParams = KdfParams {
    memory_kib: 8,
    iterations: 1,
    parallelism: 1,
};

#[test]
fn a_sealed_share_opens_with_its_passphrase_only() {
    let (group, shares) = generate_with_dealer(KeygenConfig {
        threshold: 2,
        total: 3,
    })
    .unwrap();
    let file = ShareFile::seal(
        &shares[0],
        "correct horse battery staple",
        KdfParams::default(),
    )
    .unwrap();
    let text = file.to_json();
    assert!(text.contains("argon2id") && text.contains("chacha20poly1305"));
    let reopened = ShareFile::from_json(&text)
        .unwrap()
        .open("correct horse battery staple")
        .unwrap();
    assert_eq!(reopened.index(), 1);
    let signature = sign_message(&group, &[&reopened, &shares[1]], &[3; 32]).unwrap();
    assert!(bip340_valid(&group, &[3; 32], &signature));

    assert!(matches!(file.open("wrong"), Err(ThresholdError::Decrypt)));
    assert!(matches!(
        file.open(""),
        Err(ThresholdError::EmptyPassphrase)
    ));
    assert!(matches!(
        ShareFile::seal(&shares[0], "", FAST),
        Err(ThresholdError::EmptyPassphrase)
    ));
}

#[test]
fn a_truncated_or_altered_share_file_is_a_clear_error() {
    let (_, shares) = generate_with_dealer(KeygenConfig {
        threshold: 2,
        total: 3,
    })
    .unwrap();
    let file = ShareFile::seal(&shares[1], "pw", FAST).unwrap();
    let text = file.to_json();
    let err = ShareFile::from_json(&text[..text.len() / 2]).unwrap_err();
    assert!(
        matches!(
            err,
            ThresholdError::BadFile {
                what: "share file",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().starts_with("not a valid share file: "));

    let mut moved = file.clone();
    moved.index = 3;
    assert!(matches!(moved.open("pw"), Err(ThresholdError::Decrypt)));
    let mut weaker = file.clone();
    weaker.kdf.params.iterations = 2;
    assert!(matches!(weaker.open("pw"), Err(ThresholdError::Decrypt)));
    let mut flipped = file.clone();
    let last = flipped.ciphertext.pop().unwrap();
    flipped.ciphertext.push(if last == '0' { '1' } else { '0' });
    assert!(matches!(flipped.open("pw"), Err(ThresholdError::Decrypt)));
    let mut greedy = file.clone();
    greedy.kdf.params.memory_kib = u32::MAX;
    assert!(matches!(
        greedy.open("pw"),
        Err(ThresholdError::BadFile { .. })
    ));
}

#[test]
fn group_files_round_trip_and_refuse_inconsistency() {
    let (group, _) = generate_with_dealer(KeygenConfig {
        threshold: 2,
        total: 3,
    })
    .unwrap();
    let file = GroupFile::from_group(&group).unwrap();
    assert_eq!(file.group_pubkey.len(), 64);
    assert!(file.npub.starts_with("npub1"));
    assert_eq!(file.signer_pubkeys.len(), 3);
    let back = GroupFile::from_json(&file.to_json())
        .unwrap()
        .to_group()
        .unwrap();
    assert_eq!(back, group);
    let mut lying = file.clone();
    lying.group_pubkey = "00".repeat(32);
    assert!(lying.to_group().is_err());
    let mut lying = file;
    lying.threshold = 3;
    assert!(lying.to_group().is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// decode(encode(share)) == share, for any passphrase.
    #[test]
    fn shares_round_trip_through_files(passphrase in "[ -~]{1,40}", which in 0usize..3) {
        let (group, shares) = generate_with_dealer(KeygenConfig { threshold: 2, total: 3 }).unwrap();
        let text = ShareFile::seal(&shares[which], &passphrase, FAST).unwrap().to_json();
        let back = ShareFile::from_json(&text).unwrap().open(&passphrase).unwrap();
        prop_assert_eq!(back.index(), shares[which].index());
        prop_assert!(back.belongs_to(&group));
        let other = &shares[(which + 1) % 3];
        let sig = sign_message(&group, &[&back, other], &[1; 32]).unwrap();
        prop_assert!(bip340_valid(&group, &[1; 32], &sig));
    }

    /// The group's signature verifies for random messages.
    #[test]
    fn signatures_verify_for_random_messages(message in any::<[u8; 32]>()) {
        let (group, shares) = generate_with_dealer(KeygenConfig { threshold: 2, total: 3 }).unwrap();
        let sig = sign_message(&group, &[&shares[0], &shares[2]], &message).unwrap();
        prop_assert!(bip340_valid(&group, &message, &sig));
        prop_assert!(group.verify(&message, &sig));
    }
}

#[test]
fn a_share_file_seals_its_nodes_transport_key_beside_the_share() {
    let (group, shares) = generate_with_dealer(KeygenConfig {
        threshold: 2,
        total: 3,
    })
    .unwrap();
    let transport = nostr::Keys::generate();
    let file = ShareFile::seal_with_transport(&shares[0], &transport, "pw", FAST).unwrap();
    let text = file.to_json();
    assert!(text.contains(&transport.public_key().to_hex()));
    assert!(!text.contains(&transport.secret_key().to_secret_hex()));
    let file = ShareFile::from_json(&text).unwrap();
    let (share, keys) = file.open_with_transport("pw").unwrap();
    assert!(share.belongs_to(&group));
    assert_eq!(keys.unwrap().public_key(), transport.public_key());
    assert!(matches!(
        file.open_with_transport("wrong"),
        Err(ThresholdError::Decrypt)
    ));

    // The transport key is bound to its file: another file's, or another public key, fails.
    let other =
        ShareFile::seal_with_transport(&shares[1], &nostr::Keys::generate(), "pw", FAST).unwrap();
    let mut swapped = file.clone();
    swapped.transport = other.transport.clone();
    assert!(matches!(
        swapped.open_with_transport("pw"),
        Err(ThresholdError::Decrypt)
    ));
    let mut relabelled = file.clone();
    if let Some(t) = relabelled.transport.as_mut() {
        t.pubkey = nostr::Keys::generate().public_key().to_hex();
    }
    assert!(matches!(
        relabelled.open_with_transport("pw"),
        Err(ThresholdError::Decrypt)
    ));

    // A file without a transport key (written before signer nodes) still opens.
    let plain = ShareFile::seal(&shares[0], "pw", FAST).unwrap();
    assert!(!plain.to_json().contains("transport"));
    let (_, none) = ShareFile::from_json(&plain.to_json())
        .unwrap()
        .open_with_transport("pw")
        .unwrap();
    assert!(none.is_none());
}

#[test]
fn group_files_carry_transport_keys_and_old_files_still_load() {
    let (group, _) = generate_with_dealer(KeygenConfig {
        threshold: 2,
        total: 3,
    })
    .unwrap();
    let old = GroupFile::from_group(&group).unwrap();
    let old_json = old.to_json();
    assert!(!old_json.contains("transport_pubkeys"));
    let loaded = GroupFile::from_json(&old_json).unwrap();
    assert_eq!(loaded.to_group().unwrap(), group);
    assert!(loaded.transport_keys().unwrap().is_none());

    let keys: Vec<nostr::PublicKey> = (0..3)
        .map(|_| nostr::Keys::generate().public_key())
        .collect();
    let file = GroupFile::from_group(&group)
        .unwrap()
        .with_transport_keys(&keys);
    let back = GroupFile::from_json(&file.to_json()).unwrap();
    assert_eq!(back.to_group().unwrap(), group);
    assert_eq!(back.transport_keys().unwrap().unwrap(), keys);

    let mut short = back.clone();
    short.transport_pubkeys.pop();
    assert!(short.to_group().is_err());
    let mut twice = back.clone();
    twice.transport_pubkeys[2] = twice.transport_pubkeys[0].clone();
    assert!(twice.to_group().is_err());
    let mut garbage = back;
    garbage.transport_pubkeys[1] = "zz".into();
    assert!(garbage.to_group().is_err());
}
