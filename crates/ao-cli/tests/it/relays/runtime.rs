//! `ao serve` with a `[signing]` section: the gateway signs the agent's profile and its audit
//! checkpoints through three `ao signer` processes over an `ao relay` process, holding no share
//! itself; with
//! two nodes killed it answers a clear error after the timeout and goes on serving.

use std::path::Path;
use std::time::{Duration, Instant};

use nostr::{Event, JsonUtil};
use serde_json::Value;

use super::{GROUP, Process, bip340_valid, signer, transport_key};
use crate::{ao, path_str, stderr};

/// `ao init` in `dir`, with the group key as the demo agent's and `signing` appended.
fn init_with_signing(dir: &Path, signing: &str) -> std::path::PathBuf {
    let out = ao(&["init", "--dir", path_str(dir)], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let config = dir.join("ao.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[agents.demo]\n",
        &format!("[agents.demo]\npubkey = \"{}\"\n", GROUP.group_pubkey),
    );
    std::fs::write(&config, format!("{text}\n{signing}")).unwrap();
    config
}

/// `ao serve --simulated` on a loopback port with `config`; its address.
fn serve(config: &Path) -> (Process, String) {
    let process = Process::start(
        &[
            "serve",
            "--simulated",
            "--listen",
            "127.0.0.1:0",
            "--config",
            path_str(config),
        ],
        &[],
        "gateway listening on http://",
    );
    let addr = process
        .ready_line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    (process, addr)
}

/// A small HTTP client for the gateway at `addr`, with the admin token of `dir`.
struct Client {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    fn new(addr: &str, dir: &Path) -> Self {
        Self {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            http: reqwest::Client::new(),
            base: format!("http://{addr}"),
            token: std::fs::read_to_string(dir.join("admin.token"))
                .unwrap()
                .trim()
                .to_owned(),
        }
    }

    /// `method path` with the admin token (or none); the status and the body.
    fn send(&self, method: reqwest::Method, path: &str, admin: bool) -> (u16, String) {
        self.runtime.block_on(async {
            let mut request = self.http.request(method, format!("{}{path}", self.base));
            if admin {
                request = request.bearer_auth(&self.token);
            }
            let response = request
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        })
    }

    fn post(&self, path: &str) -> (u16, String) {
        self.send(reqwest::Method::POST, path, true)
    }

    fn post_json(&self, path: &str, body: &str) -> (u16, String) {
        self.runtime.block_on(async {
            let response = self
                .http
                .post(format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .header("content-type", "application/json")
                .body(body.to_owned())
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        })
    }

    fn get_json(&self, path: &str) -> (u16, Value) {
        let (status, body) = self.send(reqwest::Method::GET, path, true);
        (status, serde_json::from_str(&body).unwrap())
    }
}

/// The signed event in `body`, checked by nostr's `Event::verify` and by libsecp256k1 against
/// the group key.
fn verified(event: Event, kind: u16) -> Event {
    event.verify().unwrap();
    assert_eq!(event.kind.as_u16(), kind);
    assert_eq!(event.pubkey.to_hex(), GROUP.group_pubkey);
    assert!(bip340_valid(
        &GROUP.group_pubkey,
        &event.id.to_hex(),
        &hex::encode(event.sig.as_ref())
    ));
    event
}

/// How many partial signatures the nodes' logs in `dir` hold.
fn partials(dir: &Path) -> usize {
    (1..=3)
        .map(|i| {
            std::fs::read_to_string(dir.join(format!("node-{i}.log")))
                .unwrap_or_default()
                .lines()
                .count()
        })
        .sum()
}

#[test]
fn ao_serve_signs_the_profile_and_checkpoints_through_the_nodes_and_serves_on_when_they_are_down() {
    // `ao relay` as a process of its own, on a free loopback port.
    let relay = Process::start(
        &["relay", "--listen", "127.0.0.1:0"],
        &[],
        "relay listening on ",
    );
    let url = relay.ready_line.rsplit(' ').next().unwrap().to_owned();
    assert!(url.starts_with("ws://127.0.0.1:"), "{url}");
    let dir = tempfile::tempdir().unwrap();
    let (_, npub) = transport_key(dir.path(), "coordinator.key");
    let mut nodes: Vec<_> = (1..=3)
        .map(|i| signer(i, &url, &[&npub], dir.path()))
        .collect();
    let config = init_with_signing(
        dir.path(),
        &format!(
            "[signing]\ngroup = \"{}\"\nrelays = [\"{}\"]\nkey = \"coordinator.key\"\ntimeout_secs = 2\n",
            path_str(&GROUP.group()),
            url
        ),
    );
    let (gateway, addr) = serve(&config);
    let client = Client::new(&addr, dir.path());

    // At start: the profile, signed by the nodes, in one line with its id.
    let line = gateway
        .wait_for_stdout(
            "profile (kind 39200) signed by its signer nodes",
            Duration::from_secs(20),
        )
        .unwrap_or_else(|| panic!("no profile line: {}", gateway.stderr()));
    let id = line.rsplit("event ").next().unwrap();
    assert_eq!(id.len(), 64, "{line}");
    assert_eq!(partials(dir.path()), 2, "two nodes gave a partial each");

    // Signed again on request, behind the admin token like every /admin route.
    let (status, body) = client.send(reqwest::Method::POST, "/admin/signing/profile", false);
    assert_eq!(status, 401, "{body}");
    let (status, body) = client.post("/admin/signing/profile");
    assert_eq!(status, 200, "{body}");
    let profile = verified(Event::from_json(&body).unwrap(), 39200);
    assert_eq!(partials(dir.path()), 4, "signed again by the nodes");
    let identity = agent_orchestrator::threshold::parse_agent_profile(&profile).unwrap();
    assert_eq!(identity.name, "demo");
    assert!(identity.is_threshold_protected());

    // Nothing to checkpoint while the log is empty, and the nodes are not asked.
    let (status, body) = client.post("/admin/audit/agent-checkpoint");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("empty_log"), "{body}");
    assert_eq!(partials(dir.path()), 4);
    // A key made for the agent is the log's first entry.
    let (status, body) = client.post_json("/admin/keys", r#"{"agent": "demo"}"#);
    assert_eq!(status, 201, "{body}");

    // The agent's checkpoint of the audit log: the head, signed by the nodes, stored and checked.
    let (status, head) = client.get_json("/admin/audit/head");
    assert_eq!(status, 200, "{head}");
    let (status, body) = client.post_json("/admin/audit/agent-checkpoint", r#"{"label": "prod"}"#);
    assert_eq!(status, 201, "{body}");
    let stored: Value = serde_json::from_str(&body).unwrap();
    let event = Event::from_json(stored["event"].to_string()).unwrap();
    let event = verified(event, 39230);
    let checkpoint = agent_orchestrator::audit::parse_checkpoint(&event).unwrap();
    assert_eq!(Some(checkpoint.head.seq), head["seq"].as_u64());
    assert_eq!(checkpoint.label, "prod");
    assert_eq!(Some(checkpoint.head.hash.as_str()), head["hash"].as_str());
    assert_eq!(stored["by_agent"], true);
    assert_eq!(stored["stored"], true);
    let (status, report) = client.get_json("/admin/audit/verify");
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["intact"], true);
    let listed = report["checkpoints"].as_array().unwrap();
    assert!(
        listed
            .iter()
            .any(|c| c["id"] == event.id.to_hex() && c["by_agent"] == true && c["kind"] == 39230),
        "{report}"
    );
    assert_eq!(
        partials(dir.path()),
        6,
        "three signings of two partials each"
    );

    // Two nodes killed: a clear error once the timeout has passed, and the gateway serves on.
    nodes[0].kill();
    nodes[1].kill();
    for path in ["/admin/signing/profile", "/admin/audit/agent-checkpoint"] {
        let started = Instant::now();
        let (status, body) = client.post(path);
        let waited = started.elapsed();
        assert_eq!(status, 503, "{path}: {body}");
        let error: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["error"]["code"], "signing_unavailable", "{body}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("the signer nodes did not sign")
                && message.contains("fewer than the 2 signers needed took part")
                && message.contains("no answer within 2s from signers 1 and 2"),
            "{message}"
        );
        assert!(waited >= Duration::from_secs(2), "{waited:?}");
        assert!(waited < Duration::from_secs(20), "{waited:?}");
    }
    let (status, body) = client.send(reqwest::Method::GET, "/healthz", false);
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (_, report) = client.get_json("/admin/audit/verify");
    assert_eq!(
        report["checkpoints"].as_array().unwrap().len(),
        listed.len(),
        "nothing stored for a checkpoint the nodes did not sign"
    );
    drop(nodes);
}

#[test]
fn without_nodes_the_gateway_still_serves_and_without_signing_or_the_agent_it_says_why() {
    let dir = tempfile::tempdir().unwrap();
    transport_key(dir.path(), "coordinator.key");
    // A relay where nothing listens: the profile cannot be signed at start, and that is an error
    // line, not a stop.
    let config = init_with_signing(
        dir.path(),
        &format!(
            "[signing]\ngroup = \"{}\"\nrelays = [\"ws://127.0.0.1:9\"]\nkey = \"coordinator.key\"\ntimeout_secs = 1\n",
            path_str(&GROUP.group())
        ),
    );
    let (gateway, addr) = serve(&config);
    let client = Client::new(&addr, dir.path());
    let deadline = Instant::now() + Duration::from_secs(15);
    while !gateway
        .stderr()
        .contains("cannot sign the agent's profile at start")
    {
        assert!(Instant::now() < deadline, "{}", gateway.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        gateway.stderr().contains("no relay answered"),
        "{}",
        gateway.stderr()
    );
    let (status, body) = client.send(reqwest::Method::GET, "/healthz", false);
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, body) = client.post("/admin/signing/profile");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no relay answered"), "{body}");
    let key = std::fs::read_to_string(dir.path().join("coordinator.key")).unwrap();
    assert!(
        !gateway.stderr().contains(key.trim()),
        "the key never shows"
    );
    drop(gateway);

    // No agent has the group key: `ao serve` refuses to start, and says what to set.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(&format!("pubkey = \"{}\"\n", GROUP.group_pubkey), ""),
    )
    .unwrap();
    let out = ao(
        &[
            "serve",
            "--config",
            path_str(&config),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "no agent has the group key as its `pubkey`; give exactly one agent `pubkey = \"{}\"`",
            GROUP.group_pubkey
        )),
        "{}",
        stderr(&out)
    );

    // Without [signing]: the endpoints say so, and nothing else changes.
    let plain = tempfile::tempdir().unwrap();
    let out = ao(&["init", "--dir", path_str(plain.path())], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (_gateway, addr) = serve(&plain.path().join("ao.toml"));
    let client = Client::new(&addr, plain.path());
    for path in ["/admin/signing/profile", "/admin/audit/agent-checkpoint"] {
        let (status, body) = client.post(path);
        assert_eq!(status, 409, "{path}: {body}");
        assert!(body.contains("signing_not_configured"), "{body}");
    }
    for bad in [r#"{"label": ""}"#, r#"{"lable": "x"}"#, "not json"] {
        let (status, body) = client.post_json("/admin/audit/agent-checkpoint", bad);
        assert_eq!(status, 400, "{bad}: {body}");
    }
}
