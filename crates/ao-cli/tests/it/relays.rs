//! Signer nodes as `ao signer` processes, over a relay running in this test process: signing
//! with nodes down, a cheating node, replayed traffic, key generation over the relay, the
//! bunker. Every signature is checked by libsecp256k1, and every event by nostr's
//! `Event::verify`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, LazyLock, Mutex, mpsc};
use std::time::Duration;

use agent_orchestrator::signer::Relay;
use nostr::secp256k1::{Message, Secp256k1, XOnlyPublicKey, schnorr};
use tempfile::TempDir;

use crate::{ao, path_str, stderr, stdout};

mod adversary;
mod bunker;
mod keygen;
mod nodes;
mod runtime;

/// Each share's own passphrase.
pub(crate) const PASSES: [(&str, &str); 3] = [
    ("AO_PASSPHRASE_1", "node one: correct horse"),
    ("AO_PASSPHRASE_2", "node two: battery staple"),
    ("AO_PASSPHRASE_3", "node three: tr0ub4dor&3"),
];

/// A 2-of-3 group made by `ao keygen` (with a transport key per share), shared by the tests,
/// which only read it.
pub(crate) struct Fixture {
    dir: TempDir,
    pub(crate) group_pubkey: String,
}

impl Fixture {
    pub(crate) fn group(&self) -> PathBuf {
        self.dir.path().join("group.json")
    }

    pub(crate) fn share(&self, i: u16) -> PathBuf {
        self.dir.path().join(format!("share-{i}.json"))
    }
}

pub(crate) static GROUP: LazyLock<Fixture> = LazyLock::new(|| {
    let dir = tempfile::Builder::new()
        .prefix("ao-cli-relays-fixture-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let out = ao(
        &[
            "keygen",
            "--threshold",
            "2",
            "--total",
            "3",
            "--out",
            path_str(dir.path()),
        ],
        &PASSES,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("group.json")).unwrap())
            .unwrap();
    assert_eq!(json["transport_pubkeys"].as_array().unwrap().len(), 3);
    let group_pubkey = json["group_pubkey"].as_str().unwrap().to_owned();
    Fixture { dir, group_pubkey }
});

/// A relay in this process, on a runtime of its own that lives as long as the value.
pub(crate) struct TestRelay {
    relay: Relay,
    pub(crate) runtime: tokio::runtime::Runtime,
}

impl TestRelay {
    pub(crate) fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let relay = runtime
            .block_on(Relay::start(SocketAddr::from(([127, 0, 0, 1], 0)), 100_000))
            .unwrap();
        Self { relay, runtime }
    }

    pub(crate) fn url(&self) -> &str {
        self.relay.url()
    }
}

/// A running `ao` process whose stdout and stderr are collected, killed when dropped.
pub(crate) struct Process {
    child: Child,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
    /// The stdout line that said it was ready.
    pub(crate) ready_line: String,
}

impl Process {
    /// Starts `ao` with `args` and waits (at most 20 s) for a stdout line containing `ready`.
    pub(crate) fn start(args: &[&str], envs: &[(&str, &str)], ready: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ao"))
            .args(args)
            .env_remove("AO_PASSPHRASE")
            .env("RUST_LOG", "warn,ao_signer=info")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let collected = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&collected);
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut process = Self {
            child,
            stderr: collected,
            stdout: Arc::default(),
            ready_line: String::new(),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(ready) => {
                    process.ready_line = line;
                    break;
                }
                Ok(_) => {}
                Err(_) => {
                    let _ = process.child.kill();
                    std::thread::sleep(Duration::from_millis(100));
                    panic!(
                        "`ao {}` never said `{ready}`: {}",
                        args.join(" "),
                        process.stderr()
                    );
                }
            }
        }
        // Keep reading stdout so the process never blocks on a full pipe.
        let sink = Arc::clone(&process.stdout);
        std::thread::spawn(move || {
            while let Ok(line) = rx.recv() {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        process
    }

    /// The first stdout line after the ready line that contains `needle`, waited for at most
    /// `wait`.
    pub(crate) fn wait_for_stdout(&self, needle: &str, wait: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let found = self
                .stdout
                .lock()
                .unwrap()
                .lines()
                .find(|l| l.contains(needle))
                .map(str::to_owned);
            if found.is_some() || std::time::Instant::now() >= deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Kills the process (SIGKILL: no chance to clean up) and waits for it.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `ao signer` for share `i` of [`GROUP`] on `relay`, trusting `coordinators`, its log
/// in `logs`.
pub(crate) fn signer(i: u16, relay: &str, coordinators: &[&str], logs: &Path) -> Process {
    let share = GROUP.share(i);
    let group = GROUP.group();
    let log = logs.join(format!("node-{i}.log"));
    let mut args = vec![
        "signer",
        "--share",
        path_str(&share),
        "--group",
        path_str(&group),
        "--relay",
        relay,
        "--allow-raw",
        "--log",
        path_str(&log),
    ];
    for c in coordinators {
        args.extend(["--coordinator", c]);
    }
    let pass = PASSES[usize::from(i) - 1];
    Process::start(&args, &[pass], "ready")
}

/// A new transport key in `dir`: its file and its npub.
pub(crate) fn transport_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = ao(&["transport-key", "--out", path_str(&path)], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let npub = stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("npub  ").map(str::to_owned))
        .unwrap();
    (path, npub)
}

/// `ao sign --relay` with the coordinator key `key`, then `rest`.
pub(crate) fn sign_remote(relay: &str, key: &Path, rest: &[&str]) -> Output {
    let group = GROUP.group();
    let mut args = vec![
        "sign",
        "--relay",
        relay,
        "--group",
        path_str(&group),
        "--key",
        path_str(key),
    ];
    args.extend_from_slice(rest);
    ao(&args, &[])
}

/// Whether `signature` (hex) is a valid BIP-340 signature of `message` (hex) by `pubkey` (hex),
/// checked by libsecp256k1.
pub(crate) fn bip340_valid(pubkey: &str, message: &str, signature: &str) -> bool {
    let key = XOnlyPublicKey::from_slice(&hex::decode(pubkey).unwrap()).unwrap();
    let Ok(sig) = schnorr::Signature::from_slice(&hex::decode(signature.trim()).unwrap()) else {
        return false;
    };
    let message: [u8; 32] = hex::decode(message).unwrap().try_into().unwrap();
    Secp256k1::verification_only()
        .verify_schnorr(&sig, &Message::from_digest(message), &key)
        .is_ok()
}
