use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{PASSES, TestRelay, bip340_valid, transport_key};
use crate::{ao, path_str, stderr, stdout};

/// Runs one `ao` process per argument list at once, with its passphrase, and waits for all.
fn run_together(runs: Vec<(Vec<String>, (&str, &str))>) -> Vec<Output> {
    let children: Vec<_> = runs
        .into_iter()
        .map(|(args, pass)| {
            Command::new(env!("CARGO_BIN_EXE_ao"))
                .args(&args)
                .env_remove("AO_PASSPHRASE")
                .env(pass.0, pass.1)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

fn group_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn sign_locally(group: &Path, shares: [&PathBuf; 2], message: &str) -> Output {
    ao(
        &[
            "sign",
            "--group",
            path_str(group),
            "--share",
            path_str(shares[0]),
            "--share",
            path_str(shares[1]),
            "--message-hex",
            message,
        ],
        &PASSES,
    )
}

#[test]
fn keygen_and_refresh_over_the_relay_give_each_machine_its_own_share_that_signs() {
    let relay = TestRelay::start();
    let root = tempfile::tempdir().unwrap();
    let machines: Vec<PathBuf> = (1..=3).map(|i| root.path().join(format!("m{i}"))).collect();
    let keys: Vec<(PathBuf, String)> = machines
        .iter()
        .map(|m| {
            std::fs::create_dir_all(m).unwrap();
            transport_key(m, "transport.key")
        })
        .collect();
    let runs = (0..3)
        .map(|i| {
            let mut args: Vec<String> = [
                "keygen",
                "--relay",
                relay.url(),
                "--threshold",
                "2",
                "--total",
                "3",
                "--timeout",
                "20",
                "--transport-key",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
            args.push(path_str(&keys[i].0).to_owned());
            for (_, npub) in &keys {
                args.extend(["--peer".to_owned(), npub.clone()]);
            }
            args.extend(["--out".to_owned(), path_str(&machines[i]).to_owned()]);
            (args, PASSES[i])
        })
        .collect();
    for out in run_together(runs) {
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stdout(&out).contains("this machine holds share"),
            "{}",
            stdout(&out)
        );
    }
    // Each machine has its own share only, and the same group file.
    let groups: Vec<serde_json::Value> = machines
        .iter()
        .map(|m| group_json(&m.join("group.json")))
        .collect();
    assert!(groups.iter().all(|g| *g == groups[0]));
    for (i, m) in machines.iter().enumerate() {
        let files: Vec<String> = std::fs::read_dir(m)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("share-"))
            .collect();
        assert_eq!(files, vec![format!("share-{}.json", i + 1)]);
    }
    let pubkey = groups[0]["group_pubkey"].as_str().unwrap().to_owned();
    let shares: Vec<PathBuf> = (1..=3)
        .map(|i| machines[i - 1].join(format!("share-{i}.json")))
        .collect();
    let message = "ab".repeat(32);
    let out = sign_locally(
        &machines[0].join("group.json"),
        [&shares[0], &shares[2]],
        &message,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(bip340_valid(&pubkey, &message, &stdout(&out)));

    // A refresh over the relay, each machine with its own share: the npub stays.
    let runs = (0..3)
        .map(|i| {
            let group = machines[i].join("group.json");
            let args = [
                "refresh",
                "--relay",
                relay.url(),
                "--timeout",
                "20",
                "--group",
                path_str(&group),
                "--share",
                path_str(&shares[i]),
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
            (args, PASSES[i])
        })
        .collect();
    for out in run_together(runs) {
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let refreshed = group_json(&machines[1].join("group.json"));
    assert_eq!(refreshed["group_pubkey"].as_str().unwrap(), pubkey);
    assert_ne!(refreshed["signer_pubkeys"], groups[0]["signer_pubkeys"]);
    assert_eq!(
        refreshed["transport_pubkeys"],
        groups[0]["transport_pubkeys"]
    );
    let message = "cd".repeat(32);
    let out = sign_locally(
        &machines[1].join("group.json"),
        [&shares[1], &shares[2]],
        &message,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(bip340_valid(&pubkey, &message, &stdout(&out)));
}
