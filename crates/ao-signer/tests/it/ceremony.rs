use std::time::Duration;

use ao_signer::ceremony::{self, CeremonyConfig};
use ao_threshold::{GroupPublic, KeygenConfig, SignerShare, ThresholdError, sign_message};
use nostr::{Keys, PublicKey};

use crate::{bip340_valid, connect, relay};

fn options() -> CeremonyConfig {
    CeremonyConfig {
        timeout: Duration::from_secs(10),
        resend: Duration::from_millis(200),
        max_age: Duration::from_secs(60),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keygen_over_the_relay_gives_shares_that_sign_and_a_refresh_keeps_the_key() {
    let relay = relay().await;
    let keys: Vec<Keys> = (0..3).map(|_| Keys::generate()).collect();
    let peers: Vec<PublicKey> = keys.iter().map(Keys::public_key).collect();
    let config = KeygenConfig {
        threshold: 2,
        total: 3,
    };
    let mut tasks = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let relays = connect(key.clone(), &relay).await;
        let peers = peers.clone();
        tasks.push(tokio::spawn(async move {
            // The last participant joins late: the others' messages reach it all the same.
            if i == 2 {
                tokio::time::sleep(Duration::from_millis(800)).await;
            }
            ceremony::keygen(&relays, config, &peers, options()).await
        }));
    }
    let mut outputs: Vec<(GroupPublic, SignerShare)> = Vec::new();
    for task in tasks {
        outputs.push(task.await.unwrap().unwrap());
    }
    let group = outputs[0].0.clone();
    assert!(outputs.iter().all(|(g, _)| *g == group));
    let shares: Vec<SignerShare> = outputs.into_iter().map(|(_, s)| s).collect();
    assert_eq!(
        shares.iter().map(SignerShare::index).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    for pair in [[0, 1], [1, 2], [0, 2]] {
        let signature =
            sign_message(&group, &[&shares[pair[0]], &shares[pair[1]]], &[4; 32]).unwrap();
        assert!(bip340_valid(&group, &[4; 32], &signature));
    }

    // Refresh over the relay: same group key, new shares, old ones retired.
    let mut tasks = Vec::new();
    let old_copy: Vec<SignerShare> = shares.iter().map(copy).collect();
    for (share, key) in shares.into_iter().zip(&keys) {
        let relays = connect(key.clone(), &relay).await;
        let (peers, group) = (peers.clone(), group.clone());
        tasks.push(tokio::spawn(async move {
            ceremony::refresh(&relays, &group, share, &peers, options()).await
        }));
    }
    let mut refreshed = Vec::new();
    for task in tasks {
        refreshed.push(task.await.unwrap().unwrap());
    }
    let new_group = refreshed[0].0.clone();
    assert_eq!(new_group.group_pubkey(), group.group_pubkey());
    assert_ne!(new_group.signer_pubkeys(), group.signer_pubkeys());
    let signature =
        sign_message(&new_group, &[&refreshed[0].1, &refreshed[2].1], &[5; 32]).unwrap();
    assert!(bip340_valid(&new_group, &[5; 32], &signature));
    let err = sign_message(&new_group, &[&refreshed[0].1, &old_copy[1]], &[5; 32]).unwrap_err();
    assert!(
        matches!(err, ThresholdError::WrongGroup { index: 2, .. }),
        "{err}"
    );
}

/// A copy of `share`, through its sealed form.
fn copy(share: &SignerShare) -> SignerShare {
    let fast = ao_threshold::KdfParams {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };
    ao_threshold::ShareFile::seal(share, "p", fast)
        .unwrap()
        .open("p")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_that_never_comes_is_named_after_the_timeout() {
    let relay = relay().await;
    let keys: Vec<Keys> = (0..3).map(|_| Keys::generate()).collect();
    let peers: Vec<PublicKey> = keys.iter().map(Keys::public_key).collect();
    let config = KeygenConfig {
        threshold: 2,
        total: 3,
    };
    let short = CeremonyConfig {
        timeout: Duration::from_secs(2),
        ..options()
    };
    let mut tasks = Vec::new();
    for key in &keys[..2] {
        let relays = connect(key.clone(), &relay).await;
        let peers = peers.clone();
        tasks.push(tokio::spawn(async move {
            ceremony::keygen(&relays, config, &peers, short).await
        }));
    }
    for task in tasks {
        let err = task.await.unwrap().unwrap_err();
        assert!(
            err.to_string().contains("participant 3 never joined"),
            "{err}"
        );
    }
    // A participant not among the peers is told so at once.
    let stranger = connect(Keys::generate(), &relay).await;
    let err = ceremony::keygen(&stranger, config, &peers, short)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("not among the participants"),
        "{err}"
    );
}
