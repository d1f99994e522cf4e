use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::LazyLock;

use nostr::secp256k1::{Message, Secp256k1, XOnlyPublicKey, schnorr};
use nostr::{Event, JsonUtil, Keys, ToBech32};
use tempfile::TempDir;

use crate::{ao, path_str, stderr, stdout};

mod interrupted;

/// Each share's own passphrase, as `ao keygen` wants them.
const PASSES: [(&str, &str); 3] = [
    ("AO_PASSPHRASE_1", "share one: correct horse"),
    ("AO_PASSPHRASE_2", "share two: battery staple"),
    ("AO_PASSPHRASE_3", "share three: tr0ub4dor&3"),
];

/// One passphrase for every share: what `--same-passphrase-for-all` reads, and what opening a
/// share falls back to.
const PASS: (&str, &str) = ("AO_PASSPHRASE", "correct horse battery staple");

/// A 2-of-3 group made by `ao keygen`, and what the command printed.
struct Group {
    dir: TempDir,
    stdout: String,
}

impl Group {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn pubkey(&self) -> String {
        group_json(self.path())["group_pubkey"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// A directory for a fixture that lives as long as the test binary. A static is never dropped,
/// so it stays behind when the process ends: it is made under Cargo's per-target tmp directory,
/// which `cargo clean` removes, not in the system's.
fn fixture_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("ao-cli-threshold-fixture-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

/// One keygen ceremony for the whole test binary, each share under its own passphrase
/// ([`PASSES`]): sealing three shares with Argon2id is slow.
/// Tests only read these files; a test that writes works on its own [`copy_of`] them.
static GROUP: LazyLock<Group> = LazyLock::new(|| {
    let dir = fixture_dir();
    let out = keygen(dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    Group {
        dir,
        stdout: stdout(&out),
    }
});

/// The message [`SIGNATURE`] signs.
fn message() -> String {
    "ab".repeat(32)
}

/// [`message`], signed by shares 1 and 3 of [`GROUP`].
static SIGNATURE: LazyLock<String> = LazyLock::new(|| {
    let out = sign(GROUP.path(), &[1, 3], &message());
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_owned()
});

/// A copy of [`GROUP`] after `ao refresh` over all three shares, with the pre-refresh share 1
/// kept beside them as `stale.json`.
struct Refreshed {
    dir: TempDir,
    before: serde_json::Value,
    after: serde_json::Value,
}

impl Refreshed {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn pubkey(&self) -> &str {
        self.after["group_pubkey"].as_str().unwrap()
    }
}

static REFRESHED: LazyLock<Refreshed> = LazyLock::new(|| {
    let dir = copy_of(GROUP.path(), fixture_dir());
    let d = dir.path();
    std::fs::copy(share(d, 1), d.join("stale.json")).unwrap();
    let out = ao(
        &[
            "refresh",
            "--group",
            path_str(&d.join("group.json")),
            "--share",
            path_str(&share(d, 1)),
            "--share",
            path_str(&share(d, 2)),
            "--share",
            path_str(&share(d, 3)),
        ],
        &PASSES,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    Refreshed {
        before: group_json(GROUP.path()),
        after: group_json(d),
        dir,
    }
});

/// Runs `ao keygen` for a 2-of-3 group into `out_dir`.
fn keygen(out_dir: &Path) -> Output {
    ao(
        &[
            "keygen",
            "--threshold",
            "2",
            "--total",
            "3",
            "--out",
            path_str(out_dir),
        ],
        &PASSES,
    )
}

/// Copies the group file and the share files in `from` into `to`.
fn copy_of(from: &Path, to: TempDir) -> TempDir {
    std::fs::copy(from.join("group.json"), to.path().join("group.json")).unwrap();
    for i in 1..=3 {
        std::fs::copy(share(from, i), share(to.path(), i)).unwrap();
    }
    to
}

fn share(dir: &Path, i: u16) -> PathBuf {
    dir.join(format!("share-{i}.json"))
}

fn group_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("group.json")).unwrap()).unwrap()
}

/// Runs `ao sign` with the group in `dir`, the share files `shares`, then `rest`.
fn sign_with(dir: &Path, shares: &[PathBuf], rest: &[&str], envs: &[(&str, &str)]) -> Output {
    let group = dir.join("group.json");
    let mut args = vec!["sign", "--group", path_str(&group)];
    for share in shares {
        args.extend(["--share", path_str(share)]);
    }
    args.extend_from_slice(rest);
    ao(&args, envs)
}

/// Signs `message` with the shares numbered `shares` in `dir`.
fn sign(dir: &Path, shares: &[u16], message: &str) -> Output {
    let shares: Vec<PathBuf> = shares.iter().map(|&i| share(dir, i)).collect();
    sign_with(dir, &shares, &["--message-hex", message], &PASSES)
}

fn verify(pubkey: &str, message: &str, signature: &str) -> Output {
    ao(
        &[
            "verify",
            "--pubkey",
            pubkey,
            "--message-hex",
            message,
            "--signature",
            signature,
        ],
        &[],
    )
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
fn keygen_writes_a_two_of_three_group_file() {
    let group = group_json(GROUP.path());
    assert_eq!(GROUP.pubkey().len(), 64);
    assert_eq!(group["threshold"], 2);
    assert_eq!(group["total"], 3);
    assert_eq!(group["signer_pubkeys"].as_array().unwrap().len(), 3);
    assert!(group["npub"].as_str().unwrap().starts_with("npub1"));
}

#[test]
fn keygen_prints_the_group_npub() {
    assert!(GROUP.stdout.contains("npub1"), "{}", GROUP.stdout);
    let npub = group_json(GROUP.path())["npub"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(GROUP.stdout.contains(&npub), "{}", GROUP.stdout);
}

#[test]
fn keygen_seals_every_share_with_argon2id() {
    for i in 1..=3 {
        let share = std::fs::read_to_string(share(GROUP.path(), i)).unwrap();
        assert!(share.contains("\"ciphertext\"") && share.contains("argon2id"));
    }
}

#[cfg(unix)]
#[test]
fn share_files_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    for i in 1..=3 {
        let mode = std::fs::metadata(share(GROUP.path(), i))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "share files are private");
    }
}

#[test]
fn keygen_never_overwrites_an_existing_group() {
    let dir = copy_of(GROUP.path(), tempfile::tempdir().unwrap());
    let out = keygen(dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(
        group_json(dir.path())["group_pubkey"],
        GROUP.pubkey().as_str()
    );
    for i in 1..=3 {
        assert_eq!(
            std::fs::read(share(dir.path(), i)).unwrap(),
            std::fs::read(share(GROUP.path(), i)).unwrap(),
            "share {i} is untouched"
        );
    }
}

/// Runs `ao keygen` for a 2-of-3 group into `out`, with `extra` arguments and `envs`.
fn keygen_with(out: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut args = vec![
        "keygen",
        "--threshold",
        "2",
        "--total",
        "3",
        "--out",
        path_str(out),
    ];
    args.extend_from_slice(extra);
    ao(&args, envs)
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn each_share_opens_with_its_own_passphrase_and_no_other() {
    let d = GROUP.path();
    for (i, j) in [(1u16, 2u16), (1, 3), (2, 1), (2, 3), (3, 1), (3, 2)] {
        // Every share under its own passphrase, except share i under share j's.
        let mut envs = PASSES;
        envs[usize::from(i) - 1].1 = PASSES[usize::from(j) - 1].1;
        let other = if i == 1 { 2 } else { 1 };
        let out = sign_with(
            d,
            &[share(d, other), share(d, i)],
            &["--message-hex", &message()],
            &envs,
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "share {i} opened with share {j}'s passphrase"
        );
        assert!(
            stderr(&out).contains("wrong passphrase"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn keygen_out_share_puts_each_share_in_its_own_directory() {
    let dir = tempfile::tempdir().unwrap();
    let [main, second, third] = ["main", "second", "third"].map(|s| dir.path().join(s));
    let out = keygen_with(
        &main,
        &[
            "--out-share",
            &format!("2={}", second.display()),
            "--out-share",
            &format!("3={}", third.display()),
        ],
        &PASSES,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(names(&main), ["group.json", "share-1.json"]);
    assert_eq!(names(&second), ["group.json", "share-2.json"]);
    assert_eq!(names(&third), ["group.json", "share-3.json"]);
    let group = std::fs::read(main.join("group.json")).unwrap();
    assert_eq!(std::fs::read(second.join("group.json")).unwrap(), group);
    assert_eq!(std::fs::read(third.join("group.json")).unwrap(), group);

    // Shares from two directories sign together, with the copy of the group file.
    let message = "77".repeat(32);
    let out = sign_with(
        &third,
        &[share(&main, 1), share(&third, 3)],
        &["--message-hex", &message],
        &PASSES,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let pubkey = group_json(&main)["group_pubkey"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(independently_valid(&pubkey, &message, stdout(&out).trim()));
}

#[test]
fn keygen_refuses_out_share_for_a_share_the_group_does_not_have() {
    let dir = tempfile::tempdir().unwrap();
    let out = keygen_with(
        &dir.path().join("main"),
        &[
            "--out-share",
            &format!("4={}", dir.path().join("x").display()),
        ],
        &PASSES,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("there is no share 4"),
        "{}",
        stderr(&out)
    );
    assert!(names(dir.path()).is_empty(), "nothing is written");
}

#[test]
fn keygen_refuses_to_put_every_share_under_ao_passphrase_without_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("key");
    let out = keygen_with(&out_dir, &[], &[PASS]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("every share under one passphrase"), "{err}");
    assert!(err.contains("AO_PASSPHRASE_1"), "{err}");
    assert!(err.contains("--same-passphrase-for-all"), "{err}");
    assert!(!out_dir.exists(), "nothing is written");
}

#[test]
fn keygen_with_same_passphrase_for_all_warns_that_it_undoes_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = keygen_with(d, &["--same-passphrase-for-all"], &[PASS]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("warning: --same-passphrase-for-all"),
        "{err}"
    );
    assert!(err.contains("can sign alone"), "{err}");
    assert!(err.contains("undoes the 2-of-3 threshold"), "{err}");

    // AO_PASSPHRASE opens any share without a variable of its own.
    let message = "42".repeat(32);
    let out = sign_with(
        d,
        &[share(d, 1), share(d, 2)],
        &["--message-hex", &message],
        &[PASS],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let pubkey = group_json(d)["group_pubkey"].as_str().unwrap().to_owned();
    assert!(independently_valid(&pubkey, &message, stdout(&out).trim()));
}

#[test]
fn keygen_refuses_two_shares_given_the_same_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("key");
    let mut envs = PASSES;
    envs[2].1 = PASSES[0].1;
    let out = keygen_with(&out_dir, &[], &envs);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("shares 1 and 3 were given the same passphrase"),
        "{}",
        stderr(&out)
    );
    assert!(!out_dir.exists(), "nothing is written");
}

#[test]
fn keygen_without_any_passphrase_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("key");
    let out = keygen_with(&out_dir, &[], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("no passphrase for the new share 1: set AO_PASSPHRASE_1"),
        "{}",
        stderr(&out)
    );
    assert!(!out_dir.exists(), "nothing is written");
}

#[test]
fn two_of_three_shares_sign_a_message_libsecp256k1_verifies() {
    assert_eq!(SIGNATURE.len(), 128);
    assert!(independently_valid(&GROUP.pubkey(), &message(), &SIGNATURE));
}

#[test]
fn verify_accepts_the_group_signature() {
    let out = verify(&GROUP.pubkey(), &message(), &SIGNATURE);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out).trim(), "valid");
}

#[test]
fn verify_rejects_the_signature_over_another_message() {
    let out = verify(&GROUP.pubkey(), &"cd".repeat(32), &SIGNATURE);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out).trim(), "invalid");
}

#[test]
fn one_share_alone_cannot_sign() {
    let out = sign(GROUP.path(), &[2], &message());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("needs 2 to sign"), "{}", stderr(&out));
}

#[test]
fn a_wrong_passphrase_opens_no_share() {
    let d = GROUP.path();
    let out = sign_with(
        d,
        &[share(d, 1), share(d, 2)],
        &["--message-hex", &message()],
        &[("AO_PASSPHRASE", "wrong")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("wrong passphrase"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn without_a_passphrase_or_a_terminal_sign_says_to_set_one() {
    let d = GROUP.path();
    let out = sign_with(d, &[share(d, 1)], &["--message-hex", &message()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no passphrase for share 1: set AO_PASSPHRASE_1 (or AO_PASSPHRASE)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_truncated_share_file_is_a_clear_error() {
    let d = GROUP.path();
    let text = std::fs::read_to_string(share(d, 1)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.json");
    std::fs::write(&cut, &text[..text.len() / 3]).unwrap();
    let out = sign_with(
        d,
        &[cut, share(d, 1)],
        &["--message-hex", &message()],
        &PASSES,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a valid share file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_message_that_is_not_64_hex_characters_is_refused() {
    let d = GROUP.path();
    let out = sign_with(d, &[share(d, 1)], &["--message-hex", "xyz"], &PASSES);
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
        &PASSES,
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
        &PASSES,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let event = Event::from_json(stdout(&out).trim()).unwrap();
    event.verify().unwrap();
    assert_eq!(event.pubkey, keys.public_key());
    assert_eq!(event.content, "signed by two of three");
}

#[test]
fn refresh_keeps_the_group_key_and_replaces_the_signer_keys() {
    let (before, after) = (&REFRESHED.before, &REFRESHED.after);
    assert_eq!(after["group_pubkey"], before["group_pubkey"]);
    assert_ne!(after["signer_pubkeys"], before["signer_pubkeys"]);
}

#[test]
fn refreshed_shares_sign_for_the_unchanged_group_key() {
    let message = "11".repeat(32);
    let out = sign(REFRESHED.path(), &[1, 2], &message);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(independently_valid(
        REFRESHED.pubkey(),
        &message,
        stdout(&out).trim()
    ));
}

#[test]
fn refresh_leaves_no_previous_generation_on_disk() {
    assert_eq!(
        names(REFRESHED.path()),
        [
            "group.json",
            "share-1.json",
            "share-2.json",
            "share-3.json",
            "stale.json"
        ]
    );
}

#[test]
fn a_share_from_before_a_refresh_no_longer_signs() {
    let d = REFRESHED.path();
    let out = sign_with(
        d,
        &[d.join("stale.json"), share(d, 2)],
        &["--message-hex", &"11".repeat(32)],
        &PASSES,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("does not belong to this group"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_lost_share_repaired_from_two_others_signs_again() {
    let dir = copy_of(REFRESHED.path(), tempfile::tempdir().unwrap());
    let d = dir.path();
    std::fs::remove_file(share(d, 3)).unwrap();
    let out = ao(
        &[
            "repair",
            "--group",
            path_str(&d.join("group.json")),
            "--share",
            path_str(&share(d, 1)),
            "--share",
            path_str(&share(d, 2)),
            "--index",
            "3",
            "--out",
            path_str(&share(d, 3)),
        ],
        &PASSES,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let message = "11".repeat(32);
    let out = sign(d, &[3, 1], &message);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(independently_valid(
        REFRESHED.pubkey(),
        &message,
        stdout(&out).trim()
    ));
}

#[test]
fn ao_passphrase_alone_still_opens_every_share_for_refresh_and_repair() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = keygen_with(d, &["--same-passphrase-for-all"], &[PASS]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pubkey = group_json(d)["group_pubkey"].as_str().unwrap().to_owned();

    let out = ao(
        &[
            "refresh",
            "--group",
            path_str(&d.join("group.json")),
            "--share",
            path_str(&share(d, 1)),
            "--share",
            path_str(&share(d, 2)),
            "--share",
            path_str(&share(d, 3)),
        ],
        &[PASS],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("shares 1, 2 and 3 are encrypted under one passphrase"),
        "{}",
        stderr(&out)
    );

    std::fs::remove_file(share(d, 3)).unwrap();
    let out = ao(
        &[
            "repair",
            "--group",
            path_str(&d.join("group.json")),
            "--share",
            path_str(&share(d, 1)),
            "--share",
            path_str(&share(d, 2)),
            "--index",
            "3",
            "--out",
            path_str(&share(d, 3)),
        ],
        &[PASS],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("the repaired share 3 is encrypted under the same passphrase as share 1"),
        "{}",
        stderr(&out)
    );

    let message = "24".repeat(32);
    let out = sign_with(
        d,
        &[share(d, 3), share(d, 2)],
        &["--message-hex", &message],
        &[PASS],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(independently_valid(&pubkey, &message, stdout(&out).trim()));
}
