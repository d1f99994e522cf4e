//! Four real `ao serve` processes on one PostgreSQL database (a schema of its own on
//! `AO_TEST_DATABASE_URL`, default the local server): one budget, one set of approvals, one set
//! of keys, whichever gateway a call goes through, and a gateway killed with `-9` leaves nothing
//! billed uncharged.
//!
//! Under CI (`CI` set) a server that cannot be reached is a failure; elsewhere these tests say
//! loudly that they were skipped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agent_orchestrator::approvals::{Verdict, build_decision_event};
use agent_orchestrator::budget::Ledger;
use agent_orchestrator::gateway::hash_key;
use agent_orchestrator::store::pg::{ScratchSchema, test_server_url};
use agent_orchestrator::store::{PgOptions, PgStore};
use ao_sim::{Behavior, SimServer};
use nostr::{JsonUtil, Keys};
use serde_json::{Value, json};

use crate::path_str;

const KEY: &str = "ao-test-cluster-key";
const ADMIN: &str = "ao-test-cluster-admin";

/// One cluster test at a time: each opens four gateways' pools on the one server.
pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A fresh schema, or `None` (said loudly) when no server is there outside CI.
pub(crate) fn scratch() -> Option<ScratchSchema> {
    match ScratchSchema::create(&test_server_url()) {
        Ok(schema) => Some(schema),
        Err(error) if std::env::var_os("CI").is_none() => {
            eprintln!(
                "SKIPPED: no PostgreSQL at {} ({error}); set AO_TEST_DATABASE_URL to run these tests",
                test_server_url()
            );
            None
        }
        Err(error) => panic!(
            "PostgreSQL is required under CI and cannot be reached at {}: {error}",
            test_server_url()
        ),
    }
}

/// A running `ao serve`, killed when dropped.
pub(crate) struct Gateway {
    pub(crate) child: Child,
    pub(crate) base: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGTERM, and waits for the gateway to finish its writes and exit.
    pub(crate) fn stop(mut self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        assert!(self.child.wait().unwrap().success(), "a clean stop");
    }
}

/// Starts `ao serve` with the configuration at `config`.
pub(crate) fn serve(config: &std::path::Path) -> Gateway {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ao"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            path_str(config),
        ])
        .env_remove("AO_CONFIG")
        .env_remove("AO_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the gateway exited before printing its address"))
            .unwrap();
        if let Some(rest) = line.strip_prefix("agent-orchestrator gateway listening on http://") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Gateway {
        child,
        base: format!("http://{addr}"),
    }
}

/// A configuration for gateways on `schema`, the backend at `backend`; `agent` is the agent's
/// TOML table body.
pub(crate) fn config(
    dir: &std::path::Path,
    database: &str,
    backend: &str,
    agent: &str,
    extra: &str,
) -> std::path::PathBuf {
    let path = dir.join("ao.toml");
    std::fs::write(
        &path,
        format!(
            r#"
data_dir = "{dir}"
default_backend = "openai"

[database]
url = "{url}"
lease_secs = 2
max_connections = 4

[server]
admin_token_sha256 = "{admin}"

[[backends]]
provider = "openai"
model = "gpt-4o"
endpoint = "{backend}"
cost_per_1k_input = 1000
cost_per_1k_output = 1000
timeout_secs = 30
max_retries = 0

[agents.burst]
api_key_sha256 = "{key}"
{agent}
{extra}
"#,
            dir = dir.display(),
            url = database,
            admin = hash_key(ADMIN),
            key = hash_key(KEY),
        ),
    )
    .unwrap();
    path
}

fn chat(max_tokens: u64) -> Value {
    json!({"model": "auto", "max_tokens": max_tokens, "messages": [{"role": "user", "content": "hello"}]})
}

pub(crate) async fn post(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut request = client.post(url).bearer_auth(KEY).json(&chat(50));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    // A gateway killed mid-call answers nothing: status 0.
    let Ok(response) = request.send().await else {
        return (0, Value::Null);
    };
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Sats charged to `agent` in the database.
pub(crate) fn charged(database: &str, agent: &str) -> u64 {
    let store = PgStore::connect(database, PgOptions::default()).unwrap();
    store
        .load_agent_range(agent, 0, u64::MAX)
        .unwrap()
        .iter()
        .map(|r| r.cost_sats)
        .sum()
}

/// 60 calls spread over four gateways at once, each held at the provider until all have been
/// decided: exactly as many as the daily budget holds are admitted, the rest are refused with
/// 429, and what was charged is within the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_four_gateways_admits_exactly_what_the_budget_allows() {
    let _serial = SERIAL.lock().await;
    let Some(schema) = scratch() else {
        return;
    };
    let provider = SimServer::start(Behavior::Hang(Duration::from_secs(4)))
        .await
        .unwrap();
    provider.bill_like_a_provider();
    let dir = tempfile::tempdir().unwrap();
    let agent = r#"autonomy = "fully-autonomous"
budget = { daily_limit_sats = 1000, session_limit_sats = 1000 }"#;
    let config = config(dir.path(), schema.url(), &provider.url(), agent, "");
    let gateways: Vec<Gateway> = (0..4).map(|_| serve(&config)).collect();
    let client = reqwest::Client::new();
    let calls: Vec<_> = (0..60)
        .map(|i| {
            let (client, url) = (client.clone(), gateways[i % 4].url("/v1/chat/completions"));
            tokio::spawn(async move { post(&client, &url, &[]).await })
        })
        .collect();
    let mut admitted = 0u64;
    let mut requested = None;
    for call in calls {
        let (status, body) = call.await.unwrap();
        match status {
            200 => admitted += 1,
            429 => {
                assert_eq!(body["error"]["code"], "daily_budget_exceeded", "{body}");
                requested = body["error"]["requested_sats"].as_u64();
            }
            other => panic!("{other}: {body}"),
        }
    }
    let estimate = requested.expect("some calls were refused");
    assert_eq!(
        admitted,
        1000 / estimate,
        "each call reserved {estimate} sats"
    );
    assert_eq!(
        provider.requests() as u64,
        admitted,
        "no refused call reached the provider"
    );
    gateways.into_iter().for_each(Gateway::stop);
    let charged = charged(schema.url(), "burst");
    assert!(charged <= 1000, "charged {charged}");
    assert_eq!(charged, provider.billed_sats(1000, 1000));
}

/// A gateway killed with `-9` while its calls are at the provider: the others keep serving, and
/// after the lease they charge its holds, so every sat the provider billed is charged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_mid_burst_leaves_nothing_billed_uncharged() {
    let _serial = SERIAL.lock().await;
    let Some(schema) = scratch() else {
        return;
    };
    let provider = SimServer::start(Behavior::Hang(Duration::from_secs(3)))
        .await
        .unwrap();
    provider.bill_like_a_provider();
    let dir = tempfile::tempdir().unwrap();
    let agent = r#"autonomy = "fully-autonomous"
budget = { daily_limit_sats = 1000000, session_limit_sats = 1000000 }"#;
    let config = config(dir.path(), schema.url(), &provider.url(), agent, "");
    let mut gateways: Vec<Gateway> = (0..4).map(|_| serve(&config)).collect();
    let client = reqwest::Client::new();
    let calls: Vec<_> = (0..40)
        .map(|i| {
            let (client, url) = (client.clone(), gateways[i % 4].url("/v1/chat/completions"));
            tokio::spawn(async move { post(&client, &url, &[]).await })
        })
        .collect();
    let started = Instant::now();
    while provider.requests() < 40 && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(provider.requests(), 40, "the burst reached the provider");
    // SIGKILL: ten calls in flight, their holds in the database and nobody to settle them.
    gateways[0].child.kill().unwrap();
    gateways[0].child.wait().unwrap();
    let mut served = 0;
    for call in calls {
        if call.await.unwrap().0 == 200 {
            served += 1;
        }
    }
    assert_eq!(served, 30, "the other gateways' calls all finished");
    let (status, _) = post(&client, &gateways[1].url("/v1/chat/completions"), &[]).await;
    assert_eq!(status, 200, "the others keep serving");
    // Once the dead gateway's leases run out, a live one charges its holds at their estimates.
    let billed = provider.billed_sats(1000, 1000);
    let deadline = Instant::now() + Duration::from_secs(15);
    while charged(schema.url(), "burst") < billed && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let charged = charged(schema.url(), "burst");
    assert!(charged >= billed, "billed {billed}, charged only {charged}");
    let store = PgStore::connect(schema.url(), PgOptions::default()).unwrap();
    assert!(
        store.holds().unwrap().is_empty(),
        "every hold settled or charged"
    );
    let report = store.audit_report().unwrap();
    assert!(report.is_intact(), "{:?}", report.findings);
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A call waits on gateway A for an approval; the operator signs it through gateway B, and A's
/// call goes through; the approval is then spent for C and D too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_signed_through_one_gateway_lets_one_call_through_another() {
    let _serial = SERIAL.lock().await;
    let Some(schema) = scratch() else {
        return;
    };
    let provider = SimServer::start(Behavior::reply()).await.unwrap();
    let operator = Keys::generate();
    let dir = tempfile::tempdir().unwrap();
    let agent = format!(
        "autonomy = \"supervised\"\noperator = \"{}\"",
        operator.public_key().to_hex()
    );
    let config = config(
        dir.path(),
        schema.url(),
        &provider.url(),
        &agent,
        "[approvals]\nwait_secs = 20",
    );
    let gateways: Vec<Gateway> = (0..4).map(|_| serve(&config)).collect();
    let client = reqwest::Client::new();
    let waiting = {
        let (client, url) = (client.clone(), gateways[0].url("/v1/chat/completions"));
        tokio::spawn(async move { post(&client, &url, &[]).await })
    };
    // Gateway B lists the request filed through A.
    let deadline = Instant::now() + Duration::from_secs(5);
    let id = loop {
        let pending: Value = client
            .get(gateways[1].url("/admin/approvals"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(id) = pending["pending"][0]["request_id"].as_str() {
            break id.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "B never saw A's request: {pending}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(provider.requests(), 0);
    let event = build_decision_event(&operator, &id, Verdict::Approve, Some("ok"), now()).unwrap();
    let signed = client
        .post(gateways[1].url("/admin/approvals/signed"))
        .bearer_auth(ADMIN)
        .body(event.as_json())
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status().as_u16(), 200);
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the call waiting on A woke")
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(provider.requests(), 1);
    // Used by A's call: not again, through any gateway.
    for gateway in &gateways[2..] {
        let (status, body) = post(
            &client,
            &gateway.url("/v1/chat/completions"),
            &[("x-ao-approval", &id)],
        )
        .await;
        assert_eq!(status, 403, "{body}");
    }
    assert_eq!(provider.requests(), 1, "an approval allows one call");
}

/// A key made through one gateway works on another; revoked through a third, it is refused by
/// the fourth within two seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_on_one_gateway_is_refused_by_all_within_two_seconds() {
    let _serial = SERIAL.lock().await;
    let Some(schema) = scratch() else {
        return;
    };
    let provider = SimServer::start(Behavior::reply()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        schema.url(),
        &provider.url(),
        "autonomy = \"fully-autonomous\"",
        "",
    );
    let gateways: Vec<Gateway> = (0..4).map(|_| serve(&config)).collect();
    let client = reqwest::Client::new();
    let created: Value = client
        .post(gateways[0].url("/admin/keys"))
        .bearer_auth(ADMIN)
        .json(&json!({"agent": "burst"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (key, id) = (
        created["key"].as_str().unwrap().to_owned(),
        created["id"].as_str().unwrap().to_owned(),
    );
    let call = |gateway: &Gateway| {
        client
            .post(gateway.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&chat(10))
            .send()
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while call(&gateways[1]).await.unwrap().status().as_u16() != 200 {
        assert!(
            Instant::now() < deadline,
            "B never took up the key made on A"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let revoked = client
        .delete(gateways[2].url(&format!("/admin/keys/{id}")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status().as_u16(), 200);
    let revoked_at = Instant::now();
    for (i, gateway) in gateways.iter().enumerate() {
        loop {
            let status = call(gateway).await.unwrap().status().as_u16();
            if status == 401 {
                break;
            }
            assert!(
                revoked_at.elapsed() < Duration::from_secs(2),
                "gateway {i} still accepts a key revoked on another"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `ao approvals approve --db postgres://...` decides a request filed through a gateway: the
/// call waiting on it there goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_made_with_the_cli_wakes_the_call_waiting_on_a_gateway() {
    let _serial = SERIAL.lock().await;
    let Some(schema) = scratch() else {
        return;
    };
    let provider = SimServer::start(Behavior::reply()).await.unwrap();
    let operator = Keys::generate();
    let dir = tempfile::tempdir().unwrap();
    let agent = format!(
        "autonomy = \"supervised\"\noperator = \"{}\"",
        operator.public_key().to_hex()
    );
    let config = config(
        dir.path(),
        schema.url(),
        &provider.url(),
        &agent,
        "[approvals]\nwait_secs = 20",
    );
    let gateways: Vec<Gateway> = (0..2).map(|_| serve(&config)).collect();
    let client = reqwest::Client::new();
    let waiting = {
        let (client, url) = (client.clone(), gateways[0].url("/v1/chat/completions"));
        tokio::spawn(async move { post(&client, &url, &[]).await })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let id = loop {
        let listed = crate::ao(&["approvals", "--db", schema.url(), "list"], &[]);
        let text = crate::stdout(&listed);
        // A header line, then one line per pending request, its id first.
        if let Some(id) = text
            .lines()
            .nth(1)
            .and_then(|l| l.split_whitespace().next())
        {
            break id.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "the CLI never listed the request: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let key_file = dir.path().join("operator.nsec");
    std::fs::write(&key_file, operator.secret_key().to_secret_hex()).unwrap();
    let approved = crate::ao(
        &[
            "approvals",
            "--db",
            schema.url(),
            "approve",
            &id,
            "--key-file",
            path_str(&key_file),
        ],
        &[],
    );
    assert!(approved.status.success(), "{}", crate::stderr(&approved));
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the call waiting on the gateway woke")
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(provider.requests(), 1);
}
