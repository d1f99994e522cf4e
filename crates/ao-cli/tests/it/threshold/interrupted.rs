//! `ao refresh` and `ao repair` interrupted: a directory that refuses writes, a process killed
//! while it writes. Whatever the point of failure, the files on disk still sign under the
//! unchanged group key, and running the command again ends in a set that signs.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};

use tempfile::TempDir;

use super::{GROUP, PASSES, copy_of, group_json, independently_valid, names, share};
use crate::{ao, path_str, stderr, stdout};

/// Every pair of `shares` signs a fresh message with `group`, and libsecp256k1 accepts each
/// signature under `pubkey`: any 2 of the 3 shares on disk still form the key.
fn every_pair_signs(group: &Path, shares: &[PathBuf; 3], pubkey: &str) {
    let message = "5a".repeat(32);
    for (a, b) in [(0, 1), (0, 2), (1, 2)] {
        let out = ao(
            &[
                "sign",
                "--group",
                path_str(group),
                "--share",
                path_str(&shares[a]),
                "--share",
                path_str(&shares[b]),
                "--message-hex",
                &message,
            ],
            &PASSES,
        );
        assert!(
            out.status.success(),
            "shares {} and {} no longer sign: {}",
            a + 1,
            b + 1,
            stderr(&out)
        );
        assert!(
            independently_valid(pubkey, &message, stdout(&out).trim()),
            "shares {} and {} sign, but not under the group key",
            a + 1,
            b + 1
        );
    }
}

/// `ao refresh` over `group` and `shares`, run through `wrapper` (a program and its arguments
/// placed before `ao`, such as `prlimit`), or directly when it is empty.
fn refresh_command(wrapper: &[String], group: &Path, shares: &[PathBuf; 3]) -> Command {
    let ao = env!("CARGO_BIN_EXE_ao").to_owned();
    let (program, before) = match wrapper.split_first() {
        Some((program, rest)) => (program.clone(), [rest, &[ao]].concat()),
        None => (ao, Vec::new()),
    };
    let mut command = Command::new(program);
    command
        .args(before)
        .args(["refresh", "--group", path_str(group)]);
    for share in shares {
        command.args(["--share", path_str(share)]);
    }
    command
        .env_remove("AO_PASSPHRASE")
        .envs(PASSES.iter().copied());
    command
}

fn refresh(group: &Path, shares: &[PathBuf; 3]) -> Output {
    refresh_command(&[], group, shares).output().unwrap()
}

fn killed(status: ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal().is_some()
}

/// A copy of [`GROUP`] spread as `ao keygen --out-share` spreads it: `main/` holds `group.json`
/// and share 1, `second/` and `third/` hold shares 2 and 3, each beside a copy of the group file.
struct Spread {
    dir: TempDir,
}

impl Spread {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (sub, i) in [("main", 1), ("second", 2), ("third", 3)] {
            let to = dir.path().join(sub);
            std::fs::create_dir(&to).unwrap();
            std::fs::copy(GROUP.path().join("group.json"), to.join("group.json")).unwrap();
            std::fs::copy(share(GROUP.path(), i), share(&to, i)).unwrap();
        }
        Self { dir }
    }

    fn sub(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn group(&self) -> PathBuf {
        self.sub("main").join("group.json")
    }

    fn shares(&self) -> [PathBuf; 3] {
        [
            share(&self.sub("main"), 1),
            share(&self.sub("second"), 2),
            share(&self.sub("third"), 3),
        ]
    }
}

/// A directory nothing can be created in, renamed in or removed from, until dropped.
///
/// `chmod 0555` is enough for an ordinary user, but root writes through it; these tests run as
/// root on our machines. So when a probe file can still be created, the directory is also made
/// immutable with `chattr +i` (ext4, xfs, btrfs and tmpfs support it; it needs
/// `CAP_LINUX_IMMUTABLE`, which root has). A directory that stays writable fails the test rather
/// than letting it pass without the failure it is about.
struct ReadOnlyDir {
    path: PathBuf,
    immutable: bool,
}

impl ReadOnlyDir {
    fn new(path: PathBuf) -> Self {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o555)).unwrap();
        let mut guard = Self {
            path,
            immutable: false,
        };
        if guard.writable() {
            let status = Command::new("chattr")
                .arg("+i")
                .arg(&guard.path)
                .status()
                .unwrap();
            guard.immutable = status.success();
        }
        assert!(
            !guard.writable(),
            "cannot make {} read-only here (chmod 0555 and chattr +i both failed)",
            guard.path.display()
        );
        guard
    }

    fn writable(&self) -> bool {
        let probe = self.path.join("probe");
        let created = std::fs::write(&probe, b"").is_ok();
        let _ = std::fs::remove_file(&probe);
        created
    }
}

impl Drop for ReadOnlyDir {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if self.immutable {
            let _ = Command::new("chattr").arg("-i").arg(&self.path).status();
        }
        let _ = std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o755));
    }
}

#[test]
fn a_refresh_that_cannot_write_one_share_fails_and_every_share_still_signs() {
    let spread = Spread::new();
    let (group, shares) = (spread.group(), spread.shares());
    let before: Vec<Vec<String>> = ["main", "second", "third"]
        .iter()
        .map(|sub| names(&spread.sub(sub)))
        .collect();
    let read_only = ReadOnlyDir::new(spread.sub("third"));
    let out = refresh(&group, &shares);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("cannot write"), "{err}");
    drop(read_only);

    every_pair_signs(&group, &shares, &GROUP.pubkey());
    assert!(err.contains("the refresh was not done"), "{err}");
    let after: Vec<Vec<String>> = ["main", "second", "third"]
        .iter()
        .map(|sub| names(&spread.sub(sub)))
        .collect();
    assert_eq!(
        after, before,
        "a failed refresh leaves no other file behind"
    );

    // Once the directory takes writes again, the same command refreshes.
    let out = refresh(&group, &shares);
    assert!(out.status.success(), "{}", stderr(&out));
    every_pair_signs(&group, &shares, &GROUP.pubkey());
    let refreshed = group_json(&spread.sub("main"));
    assert_ne!(
        refreshed["signer_pubkeys"],
        group_json(GROUP.path())["signer_pubkeys"]
    );
    // The copies of the group file beside shares 2 and 3 are the new one too.
    for sub in ["second", "third"] {
        assert_eq!(group_json(&spread.sub(sub)), refreshed, "{sub}");
    }
}

/// The kernel kills `ao` (SIGXFSZ) at its first write past `limit` bytes into any one file:
/// a kill in the middle of a write, at a point the test chooses, with no timing involved.
fn file_size_limit(limit: u64) -> Vec<String> {
    vec!["prlimit".into(), format!("--fsize={limit}")]
}

#[test]
fn a_refresh_killed_while_writing_leaves_shares_that_sign_and_a_rerun_refreshes() {
    let dir = copy_of(GROUP.path(), tempfile::tempdir().unwrap());
    let d = dir.path();
    let group = d.join("group.json");
    let shares = [share(d, 1), share(d, 2), share(d, 3)];
    let share_len = std::fs::metadata(&shares[0]).unwrap().len();
    let group_len = std::fs::metadata(&group).unwrap().len();
    // A share file fits under the limit and the group file does not: the kill comes when the
    // group file is written, after every share file has been.
    assert!(group_len > share_len + 64, "{group_len} vs {share_len}");
    let out = refresh_command(&file_size_limit(share_len + 64), &group, &shares)
        .output()
        .expect("prlimit (util-linux) runs ao under a file size limit");
    assert!(killed(out.status), "{:?} {}", out.status, stderr(&out));

    every_pair_signs(&group, &shares, &GROUP.pubkey());

    // Killed before its commit: the rerun removes what it left, then refreshes.
    let out = refresh(&group, &shares);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("had not committed"),
        "{}",
        stderr(&out)
    );
    every_pair_signs(&group, &shares, &GROUP.pubkey());
    assert_eq!(
        names(d),
        ["group.json", "share-1.json", "share-2.json", "share-3.json"]
    );
}

#[test]
fn a_refresh_killed_after_replacing_a_share_is_finished_by_a_rerun() {
    use std::os::unix::fs::MetadataExt;
    // The window between share 1's switch and the end of the run is short; on a busy machine the
    // poller can miss it, so a run that ends on its own is done again on a fresh copy.
    let mut attempts = 0;
    let (dir, status) = loop {
        attempts += 1;
        let dir = copy_of(GROUP.path(), tempfile::tempdir().unwrap());
        let d = dir.path();
        let shares = [share(d, 1), share(d, 2), share(d, 3)];
        let first = std::fs::metadata(&shares[0]).unwrap().ino();
        let mut child = refresh_command(&[], &d.join("group.json"), &shares)
            .spawn()
            .unwrap();
        // SIGKILL the moment share 1 is replaced, while the others are still being switched.
        let status = loop {
            let replaced = std::fs::metadata(&shares[0]).map_or(true, |m| m.ino() != first);
            if replaced {
                child.kill().unwrap();
                break child.wait().unwrap();
            }
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            std::thread::yield_now();
        };
        if killed(status) || attempts == 20 {
            break (dir, status);
        }
    };
    assert!(
        killed(status),
        "refresh ended before it was killed, {attempts} times: {status:?}"
    );
    let d = dir.path();
    let group = d.join("group.json");
    let shares = [share(d, 1), share(d, 2), share(d, 3)];
    let pending = std::fs::read_to_string(d.join("group.json.next")).ok();

    every_pair_signs(&group, &shares, &GROUP.pubkey());

    let out = refresh(&group, &shares);
    assert!(out.status.success(), "{}", stderr(&out));
    every_pair_signs(&group, &shares, &GROUP.pubkey());
    assert_eq!(
        names(d),
        ["group.json", "share-1.json", "share-2.json", "share-3.json"]
    );
    if let Some(pending) = pending {
        // The new shares were all written and checked before the first was switched: the rerun
        // rolls forward to exactly that generation.
        assert_eq!(std::fs::read_to_string(&group).unwrap(), pending);
        assert!(stdout(&out).contains("finished"), "{}", stdout(&out));
    }
}

#[test]
fn a_repair_killed_mid_write_leaves_no_half_written_share() {
    let dir = copy_of(GROUP.path(), tempfile::tempdir().unwrap());
    let d = dir.path();
    std::fs::remove_file(share(d, 3)).unwrap();
    let kept: Vec<Vec<u8>> = [d.join("group.json"), share(d, 1), share(d, 2)]
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let repair = |wrapper: &[String]| {
        let ao = env!("CARGO_BIN_EXE_ao").to_owned();
        let (program, before) = match wrapper.split_first() {
            Some((program, rest)) => (program.clone(), [rest, &[ao]].concat()),
            None => (ao, Vec::new()),
        };
        Command::new(program)
            .args(before)
            .args([
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
            ])
            .env_remove("AO_PASSPHRASE")
            .envs(PASSES.iter().copied())
            .output()
            .unwrap()
    };
    let out = repair(&file_size_limit(300));
    assert!(killed(out.status), "{:?} {}", out.status, stderr(&out));
    assert!(
        !share(d, 3).exists(),
        "a half-written share was left in place"
    );
    let now: Vec<Vec<u8>> = [d.join("group.json"), share(d, 1), share(d, 2)]
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert_eq!(
        now, kept,
        "the group file and the helpers' shares are untouched"
    );

    let out = repair(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        names(d),
        ["group.json", "share-1.json", "share-2.json", "share-3.json"]
    );
    every_pair_signs(
        &d.join("group.json"),
        &[share(d, 1), share(d, 2), share(d, 3)],
        &GROUP.pubkey(),
    );
}
