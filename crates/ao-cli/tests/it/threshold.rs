use std::path::Path;

use nostr::secp256k1::{Message, Secp256k1, XOnlyPublicKey, schnorr};
use nostr::{Event, JsonUtil, Keys, ToBech32};

use crate::{ao, path_str, stderr, stdout};

const PASS: (&str, &str) = ("AO_PASSPHRASE", "correct horse battery staple");

fn group_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("group.json")).unwrap()).unwrap()
}

fn sign(dir: &Path, shares: &[u16], message: &str) -> std::process::Output {
    let group = dir.join("group.json");
    let mut args = vec![
        "sign".to_string(),
        "--group".into(),
        path_str(&group).into(),
    ];
    for i in shares {
        args.push("--share".into());
        args.push(path_str(&dir.join(format!("share-{i}.json"))).into());
    }
    args.extend(["--message-hex".into(), message.into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ao(&args, &[PASS])
}

fn independently_valid(pubkey: &str, message: &str, signature: &str) -> bool {
    let key = XOnlyPublicKey::from_slice(&hex::decode(pubkey).unwrap()).unwrap();
    let sig = schnorr::Signature::from_slice(&hex::decode(signature).unwrap()).unwrap();
    let msg: [u8; 32] = hex::decode(message).unwrap().try_into().unwrap();
    Secp256k1::verification_only()
        .verify_schnorr(&sig, &Message::from_digest(msg), &key)
        .is_ok()
}

#[test]
fn keygen_sign_verify_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("agent");
    let out = ao(
        &[
            "keygen",
            "--threshold",
            "2",
            "--total",
            "3",
            "--out",
            path_str(&out_dir),
        ],
        &[PASS],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("npub1"));
    let group = group_json(&out_dir);
    let pubkey = group["group_pubkey"].as_str().unwrap().to_owned();
    assert_eq!(pubkey.len(), 64);
    assert_eq!(group["threshold"], 2);
    assert_eq!(group["total"], 3);
    assert_eq!(group["signer_pubkeys"].as_array().unwrap().len(), 3);
    assert!(group["npub"].as_str().unwrap().starts_with("npub1"));
    for i in 1..=3 {
        let share = std::fs::read_to_string(out_dir.join(format!("share-{i}.json"))).unwrap();
        assert!(share.contains("\"ciphertext\"") && share.contains("argon2id"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(out_dir.join(format!("share-{i}.json")))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "share files are private");
        }
    }

    let message = "ab".repeat(32);
    let out = sign(&out_dir, &[1, 3], &message);
    assert!(out.status.success(), "{}", stderr(&out));
    let signature = stdout(&out).trim().to_owned();
    assert_eq!(signature.len(), 128);
    assert!(independently_valid(&pubkey, &message, &signature));

    let out = ao(
        &[
            "verify",
            "--pubkey",
            &pubkey,
            "--message-hex",
            &message,
            "--signature",
            &signature,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out).trim(), "valid");
    let other = "cd".repeat(32);
    let out = ao(
        &[
            "verify",
            "--pubkey",
            &pubkey,
            "--message-hex",
            &other,
            "--signature",
            &signature,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out).trim(), "invalid");

    // Refuses to overwrite.
    let out = ao(
        &[
            "keygen",
            "--threshold",
            "2",
            "--total",
            "3",
            "--out",
            path_str(&out_dir),
        ],
        &[PASS],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(group_json(&out_dir)["group_pubkey"], pubkey.as_str());

    // One share is not enough; a wrong passphrase opens nothing.
    let out = sign(&out_dir, &[2], &message);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("needs 2 to sign"), "{}", stderr(&out));
    let group = out_dir.join("group.json");
    let share = out_dir.join("share-1.json");
    let out = ao(
        &[
            "sign",
            "--group",
            path_str(&group),
            "--share",
            path_str(&share),
            "--share",
            path_str(&out_dir.join("share-2.json")),
            "--message-hex",
            &message,
        ],
        &[("AO_PASSPHRASE", "wrong")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("wrong passphrase"),
        "{}",
        stderr(&out)
    );

    // Without a passphrase and without a terminal, it says so.
    let out = ao(
        &[
            "sign",
            "--group",
            path_str(&group),
            "--share",
            path_str(&share),
            "--message-hex",
            &message,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no passphrase: set AO_PASSPHRASE"),
        "{}",
        stderr(&out)
    );

    // A truncated share file is a clear error.
    let text = std::fs::read_to_string(&share).unwrap();
    let cut = dir.path().join("cut.json");
    std::fs::write(&cut, &text[..text.len() / 3]).unwrap();
    let out = ao(
        &[
            "sign",
            "--group",
            path_str(&group),
            "--share",
            path_str(&cut),
            "--share",
            path_str(&share),
            "--message-hex",
            &message,
        ],
        &[PASS],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a valid share file"),
        "{}",
        stderr(&out)
    );

    let out = ao(
        &[
            "sign",
            "--group",
            path_str(&group),
            "--share",
            path_str(&share),
            "--message-hex",
            "xyz",
        ],
        &[PASS],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--message-hex must be 64 hex characters"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_imported_nsec_keeps_its_npub_and_signs_events() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::generate();
    let nsec_file = dir.path().join("agent.nsec");
    std::fs::write(&nsec_file, keys.secret_key().to_bech32().unwrap()).unwrap();
    let out_dir = dir.path().join("group");
    let out = ao(
        &[
            "keygen",
            "--threshold",
            "2",
            "--total",
            "3",
            "--out",
            path_str(&out_dir),
            "--import-nsec-file",
            path_str(&nsec_file),
        ],
        &[PASS],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        group_json(&out_dir)["npub"],
        keys.public_key().to_bech32().unwrap().as_str()
    );

    let unsigned =
        nostr::EventBuilder::text_note("signed by two of three").build(keys.public_key());
    let event_file = dir.path().join("note.json");
    std::fs::write(&event_file, unsigned.as_json()).unwrap();
    let group = out_dir.join("group.json");
    let out = ao(
        &[
            "sign",
            "--group",
            path_str(&group),
            "--share",
            path_str(&out_dir.join("share-2.json")),
            "--share",
            path_str(&out_dir.join("share-3.json")),
            "--event",
            path_str(&event_file),
        ],
        &[PASS],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let event = Event::from_json(stdout(&out).trim()).unwrap();
    event.verify().unwrap();
    assert_eq!(event.pubkey, keys.public_key());
    assert_eq!(event.content, "signed by two of three");
}

#[test]
fn refresh_and_repair_over_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = ao(
        &[
            "keygen",
            "--threshold",
            "2",
            "--total",
            "3",
            "--out",
            path_str(d),
        ],
        &[PASS],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let before = group_json(d);
    let old_share_1 = std::fs::read_to_string(d.join("share-1.json")).unwrap();
    let group = d.join("group.json");
    let share = |i: u16| d.join(format!("share-{i}.json"));
    let out = ao(
        &[
            "refresh",
            "--group",
            path_str(&group),
            "--share",
            path_str(&share(1)),
            "--share",
            path_str(&share(2)),
            "--share",
            path_str(&share(3)),
        ],
        &[PASS],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let after = group_json(d);
    assert_eq!(after["group_pubkey"], before["group_pubkey"]);
    assert_ne!(after["signer_pubkeys"], before["signer_pubkeys"]);
    let message = "11".repeat(32);
    let out = sign(d, &[1, 2], &message);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(independently_valid(
        after["group_pubkey"].as_str().unwrap(),
        &message,
        stdout(&out).trim()
    ));
    // The pre-refresh share no longer signs with the group.
    let stale = d.join("stale.json");
    std::fs::write(&stale, old_share_1).unwrap();
    let out = ao(
        &[
            "sign",
            "--group",
            path_str(&group),
            "--share",
            path_str(&stale),
            "--share",
            path_str(&share(2)),
            "--message-hex",
            &message,
        ],
        &[PASS],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("does not belong to this group"),
        "{}",
        stderr(&out)
    );

    // Lose share 3, repair it from 1 and 2.
    std::fs::remove_file(share(3)).unwrap();
    let out = ao(
        &[
            "repair",
            "--group",
            path_str(&group),
            "--share",
            path_str(&share(1)),
            "--share",
            path_str(&share(2)),
            "--index",
            "3",
            "--out",
            path_str(&share(3)),
        ],
        &[PASS],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = sign(d, &[3, 1], &message);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(independently_valid(
        after["group_pubkey"].as_str().unwrap(),
        &message,
        stdout(&out).trim()
    ));
}
