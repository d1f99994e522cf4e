use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};

use serde_json::{Value, json};

use crate::{ao, path_str, stderr, stdout};

/// The permission bits of `path`.
#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn init_keeps_the_operators_key_and_admin_token_apart_from_what_an_agent_is_handed() {
    use nostr::ToBech32;

    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("ao");
    let out = ao(&["init", "--dir", path_str(&dir)], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    // What an agent is handed: its own directory, holding its key and nothing else.
    let agents = dir.join("agents");
    let handed: Vec<String> = std::fs::read_dir(&agents)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(handed, ["demo.key"]);
    // The operator's: the key that signs approvals and checkpoints, the admin token, the
    // database; readable by their owner only.
    for secret in ["operator.nsec", "admin.token", "agents/demo.key", "ao.db"] {
        assert_eq!(mode(&dir.join(secret)), 0o600, "{secret}");
    }
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&agents), 0o700);
    // The demo agent's operator is that key, so an approval needs its signature.
    let nsec = std::fs::read_to_string(dir.join("operator.nsec")).unwrap();
    let operator = nostr::Keys::parse(nsec.trim()).unwrap();
    let config = std::fs::read_to_string(dir.join("ao.toml")).unwrap();
    let npub = operator.public_key().to_bech32().unwrap();
    assert!(
        config.contains(&format!("operator = \"{npub}\"")),
        "{config}"
    );
    assert!(!config.contains(nsec.trim()), "the config holds no secret");
}

#[test]
fn from_the_first_run_an_approval_needs_the_operators_signature() {
    let dir = tempfile::tempdir().unwrap();
    let out = ao(&["init", "--dir", path_str(dir.path())], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let config = agent_orchestrator::Config::load(&dir.path().join("ao.toml")).unwrap();
    let (orchestrator, _store) = agent_orchestrator::Orchestrator::from_config(&config).unwrap();
    let id = orchestrator
        .coordinator("demo")
        .unwrap()
        .request_approval("deploy", "ship it", 5_000);
    drop(orchestrator);
    let db = dir.path().join("ao.db");
    let approve = |extra: &[&str]| {
        let mut args = vec!["approvals", "--db", path_str(&db), "approve", &id];
        args.extend_from_slice(extra);
        ao(&args, &[])
    };
    let unsigned = approve(&[]);
    assert_eq!(unsigned.status.code(), Some(1), "{}", stdout(&unsigned));
    let key_file = dir.path().join("operator.nsec");
    let signed = approve(&["--key-file", path_str(&key_file)]);
    assert!(signed.status.success(), "{}", stderr(&signed));
    assert_eq!(stdout(&signed).trim(), format!("{id}: approved"));
}

#[test]
fn init_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let out = ao(&["init", "--dir", path_str(dir.path())], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let config = std::fs::read_to_string(dir.path().join("ao.toml")).unwrap();
    assert!(config.starts_with("# agent-orchestrator: a starting configuration"));
    let key = std::fs::read_to_string(dir.path().join("agents/demo.key")).unwrap();
    assert!(
        !config.contains(key.trim()),
        "the config holds the key's hash, not the key"
    );
    let out = ao(&["init", "--dir", path_str(dir.path())], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"));
}

/// `ao serve --simulated` on a loopback port, with the configuration it makes in a fresh
/// directory. Dropping it kills the process, so a failed test leaves no gateway running.
struct Served {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    addr: String,
    dir: tempfile::TempDir,
}

impl Served {
    /// Starts the gateway and waits until it prints the address it listens on.
    fn start() -> Self {
        Self::start_in(tempfile::tempdir().unwrap())
    }

    /// Starts the gateway on the configuration in `dir` (made on the first run if missing).
    fn start_in(dir: tempfile::TempDir) -> Self {
        let config = dir.path().join("ao.toml");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ao"))
            .args([
                "serve",
                "--simulated",
                "--listen",
                "127.0.0.1:0",
                "--config",
                path_str(&config),
            ])
            .env_remove("AO_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("the gateway exited before printing its address"))
                .unwrap();
            if let Some(rest) = line.strip_prefix("agent-orchestrator gateway listening on http://")
            {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        Served {
            child,
            lines,
            addr,
            dir,
        }
    }

    /// Sends one chat completion with the demo agent's key; returns the status and the body.
    fn chat(&self) -> (u16, Value) {
        let (status, _, body) = self.chat_with_cost();
        (status, body)
    }

    /// [`chat`](Served::chat), with the `x-ao-cost-sats` header.
    fn chat_with_cost(&self) -> (u16, Option<u64>, Value) {
        let key = std::fs::read_to_string(self.dir.path().join("agents/demo.key")).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let response = reqwest::Client::new()
                .post(format!("http://{}/v1/chat/completions", self.addr))
                .bearer_auth(key.trim())
                .json(&json!({"model": "auto", "messages": [{"role": "user", "content": "hello"}]}))
                .send()
                .await
                .unwrap();
            let cost = response
                .headers()
                .get("x-ao-cost-sats")
                .map(|v| v.to_str().unwrap().parse().unwrap());
            (
                response.status().as_u16(),
                cost,
                response.json::<Value>().await.unwrap(),
            )
        })
    }

    /// Starts the gateway and has it answer one call, which costs one audit entry.
    fn after_one_call() -> Self {
        let served = Served::start();
        let (status, body) = served.chat();
        assert_eq!(status, 200, "{body}");
        served
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it exited cleanly and
    /// what it printed after its address.
    fn sigterm(&mut self) -> (ExitStatus, Vec<String>) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let exit = self.child.wait().unwrap();
        let rest = self.lines.by_ref().map_while(Result::ok).collect();
        (exit, rest)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // Already gone when the test sent SIGTERM and waited; otherwise it must not outlive us.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_answers_a_chat_completion_from_the_simulated_backend() {
    let served = Served::start();
    let (status, body) = served.chat();
    assert_eq!(status, 200, "{body}");
    assert!(body["model"].as_str().unwrap().contains("simulated"));
}

#[test]
fn serve_buys_a_completion_from_the_simulated_dvm_for_an_agent_routed_there() {
    let dir = tempfile::tempdir().unwrap();
    let out = ao(&["init", "--dir", path_str(dir.path())], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let config = dir.path().join("ao.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains("provider = \"dvm\""),
        "ao init writes a dvm backend"
    );
    let routed = text.replace("[agents.demo]\n", "[agents.demo]\nbackend = \"dvm\"\n");
    std::fs::write(&config, routed).unwrap();
    let served = Served::start_in(dir);
    let (status, cost, body) = served.chat_with_cost();
    assert_eq!(status, 200, "{body}");
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(content.starts_with("[simulated DVM]"), "{body}");
    // 21 sats and a 0.5 sat fee, rounded up: the sats paid, not the 50-sat bid.
    assert_eq!(cost, Some(22));
}

#[test]
fn serve_stops_cleanly_on_sigterm() {
    let mut served = Served::after_one_call();
    let (exit, rest) = served.sigterm();
    assert!(exit.success(), "the gateway exits cleanly on SIGTERM");
    assert!(
        rest.iter()
            .any(|l| l.contains("gateway stopped; every cost and audit entry is written")),
        "{rest:?}"
    );
}

#[test]
fn the_spend_is_in_the_database_after_sigterm() {
    let mut served = Served::after_one_call();
    let (exit, _) = served.sigterm();
    assert!(exit.success(), "the gateway exits cleanly on SIGTERM");
    let out = ao(
        &[
            "approvals",
            "--db",
            path_str(&served.dir.path().join("ao.db")),
            "verify-log",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        // The call's cost record and its completion.
        stdout(&out).contains("audit log intact: 2 entries"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn serve_without_a_config_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = ao(
        &[
            "serve",
            "--config",
            path_str(&dir.path().join("missing.toml")),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("run `ao init` first"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_busy_address_is_reported_with_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let out = ao(&["init", "--dir", path_str(dir.path())], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = ao(
        &[
            "serve",
            "--config",
            path_str(&dir.path().join("ao.toml")),
            "--listen",
            &addr,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in:\n{err}"));
    // The context, then the system's cause, once.
    let context = format!(
        "error: cannot listen on `{addr}`; choose a free address with --listen or `server.listen`: "
    );
    assert!(line.starts_with(&context), "{line}");
    let cause = &line[context.len()..];
    assert!(cause.to_lowercase().contains("in use"), "{line}");
    assert_eq!(line.matches(cause).count(), 1, "{line}");
}

#[test]
fn revoking_an_unknown_key_says_how_to_list_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = ao(&["init", "--dir", path_str(dir.path())], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let config = dir.path().join("ao.toml");
    let out = ao(
        &[
            "keys",
            "--config",
            path_str(&config),
            "revoke",
            "no-such-key",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "error: no live key `no-such-key`; list the keys and their state with `ao keys list`"
    );
    let out = ao(
        &[
            "keys",
            "--config",
            path_str(&config),
            "create",
            "--agent",
            "nobody",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "error: agent `nobody` is not in `{}`; add it under [agents] first",
            config.display()
        )
    );
}
