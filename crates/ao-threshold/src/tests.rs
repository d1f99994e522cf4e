use super::*;

/// Forms a secret could take in a `Debug` string: lowercase and uppercase hex, and the byte list.
fn forms(secret: &[u8]) -> Vec<String> {
    vec![
        hex::encode(secret),
        hex::encode_upper(secret),
        format!("{secret:?}"),
        // A long enough slice of the hex to catch a partial print.
        hex::encode(&secret[..12]),
    ]
}

fn assert_hidden(what: &str, debug: &str, secret: &[u8]) {
    for form in forms(secret) {
        assert!(
            !debug.contains(&form),
            "{what} reveals its secret in Debug: {debug}"
        );
    }
}

#[test]
fn no_secret_bearing_type_prints_its_secret() {
    let out = KeygenSession::new(KeygenConfig {
        threshold: 2,
        total: 3,
    })
    .complete()
    .unwrap();
    for share in &out.shares {
        let secret = share.key.signing_share().serialize();
        assert_eq!(secret.len(), 32);
        assert_hidden("SignerShare", &format!("{share:?}"), &secret);
        assert_hidden("SignerShare (alternate)", &format!("{share:#?}"), &secret);
        assert_hidden("KeygenOutput", &format!("{out:?}"), &secret);
        let file = ShareFile::seal(
            share,
            "pw",
            KdfParams {
                memory_kib: 8,
                iterations: 1,
                parallelism: 1,
            },
        )
        .unwrap();
        assert_hidden("ShareFile", &format!("{file:?}"), &secret);
        assert_hidden("ShareFile JSON", &file.to_json(), &secret);

        let (nonces, _) = share.commit();
        let hiding = nonces.inner.hiding().serialize();
        let binding = nonces.inner.binding().serialize();
        let debug = format!("{nonces:?}");
        assert_hidden("SigningNonces", &debug, &hiding);
        assert_hidden("SigningNonces", &debug, &binding);
    }
    let (participant, _) = DkgParticipant::new(
        KeygenConfig {
            threshold: 2,
            total: 3,
        },
        1,
    )
    .unwrap();
    assert!(format!("{participant:?}").contains("<redacted>"));

    let secret = out.shares[0].key.signing_share().serialize();
    let copy = crate::SignerShare::new(out.shares[0].index, out.shares[0].key.clone());
    let (refresh, _) = crate::RefreshParticipant::new(&out.group, copy).unwrap();
    assert_hidden("RefreshParticipant", &format!("{refresh:#?}"), &secret);
    let transport = nostr::Keys::generate();
    let file = ShareFile::seal_with_transport(
        &out.shares[0],
        &transport,
        "pw",
        KdfParams {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        },
    )
    .unwrap();
    let transport_secret = transport.secret_key().to_secret_bytes();
    assert_hidden(
        "ShareFile with transport",
        &format!("{file:?}"),
        &transport_secret,
    );
    assert_hidden(
        "ShareFile with transport JSON",
        &file.to_json(),
        &transport_secret,
    );
}

#[test]
fn a_split_key_forgets_nothing_it_should_not_print() {
    let keys = nostr::Keys::generate();
    let hex_secret = keys.secret_key().to_secret_hex();
    let err = split_secret_key(
        "nsec1notakey",
        KeygenConfig {
            threshold: 2,
            total: 3,
        },
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the secret key is not an nsec or 64 hex characters"
    );
    let (group, shares) = split_secret_key(
        &hex_secret,
        KeygenConfig {
            threshold: 2,
            total: 3,
        },
    )
    .unwrap();
    for debug in [format!("{group:?}"), format!("{shares:?}")] {
        assert!(!debug.contains(&hex_secret));
    }
}

#[test]
fn errors_can_cross_threads() {
    fn send_sync_static<E: std::error::Error + Send + Sync + 'static>() {}
    send_sync_static::<ThresholdError>();
}

#[test]
fn a_frost_refusal_keeps_the_frost_error_as_its_cause() {
    use std::error::Error as _;

    let err = crate::group::identifier(0).unwrap_err();
    assert!(matches!(err, ThresholdError::Frost(_)), "{err:?}");
    let cause = err.source().unwrap();
    assert!(cause.is::<frost_secp256k1_tr::Error>(), "{cause:?}");
    assert!(
        !err.to_string().contains(&cause.to_string()),
        "the message does not repeat its cause: {err}"
    );
}
