//! PostgreSQL stopped and started under two running gateways: while it is away every call gets a
//! 503 that says so and nothing reaches the provider; when it is back the gateways serve again
//! by themselves, and the call that was at the provider when it went is charged.
//!
//! The server is a cluster of the test's own (`initdb` in a temporary directory, `pg_ctl` on a
//! free port), so that stopping it disturbs no other test. Under CI, missing PostgreSQL
//! programs are a failure; elsewhere the test says loudly that it was skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use agent_orchestrator::budget::Ledger;
use agent_orchestrator::store::{PgOptions, PgStore};
use ao_sim::{Behavior, SimServer};

use crate::cluster::{Gateway, charged, config, post, serve};

/// The directory of `initdb` and `pg_ctl`, if this machine has them.
fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|bin| bin.join("pg_ctl").exists() && bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop()
}

/// A PostgreSQL cluster of this test's own, stopped and removed when dropped.
struct PrivateServer {
    bin: PathBuf,
    data: tempfile::TempDir,
    port: u16,
}

impl PrivateServer {
    /// `initdb` (as the `postgres` user when run as root, which PostgreSQL refuses to be) and
    /// start it on a free port.
    fn start() -> Option<Self> {
        let Some(bin) = postgres_bin() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL's programs (initdb, pg_ctl) are required under CI"
            );
            eprintln!("SKIPPED: no initdb/pg_ctl under /usr/lib/postgresql");
            return None;
        };
        let data = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = Self { bin, data, port };
        if is_root() {
            let chown = Command::new("chown")
                .args(["-R", "postgres:postgres", path(server.data.path())])
                .status()
                .unwrap();
            assert!(chown.success());
        }
        let initdb = server.bin.join("initdb");
        let pgdata = server.pgdata();
        assert!(server.run(&[
            path(&initdb),
            "-D",
            path(&pgdata),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
        ]));
        assert!(server.pg_ctl("start"), "the private server starts");
        Some(server)
    }

    fn pgdata(&self) -> PathBuf {
        self.data.path().join("pgdata")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl start` or `stop`, waiting until done.
    fn pg_ctl(&self, action: &str) -> bool {
        let pg_ctl = self.bin.join("pg_ctl");
        let pgdata = self.pgdata();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            path(self.data.path())
        );
        let log = self.data.path().join("log");
        let mut args = vec![path(&pg_ctl), "-D", path(&pgdata), "-w"];
        match action {
            "start" => args.extend(["-o", &options, "-l", path(&log), "start"]),
            _ => args.extend(["-m", "fast", "stop"]),
        }
        self.run(&args)
    }

    fn run(&self, args: &[&str]) -> bool {
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]);
            c
        } else {
            Command::new(args[0])
        };
        let args = if is_root() { args } else { &args[1..] };
        command
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap()
            .success()
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = self.pg_ctl("stop");
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_and_started_mid_run() {
    let _serial = crate::cluster::SERIAL.lock().await;
    let Some(server) = PrivateServer::start() else {
        return;
    };
    let provider = SimServer::start(Behavior::Hang(Duration::from_millis(1500)))
        .await
        .unwrap();
    provider.bill_like_a_provider();
    let dir = tempfile::tempdir().unwrap();
    let agent = r#"autonomy = "fully-autonomous"
budget = { daily_limit_sats = 1000000, session_limit_sats = 1000000 }"#;
    let config = config(dir.path(), &server.url(), &provider.url(), agent, "");
    let gateways: Vec<Gateway> = (0..2).map(|_| serve(&config)).collect();
    let client = reqwest::Client::new();
    let url = |i: usize| gateways[i].url("/v1/chat/completions");
    assert_eq!(post(&client, &url(0), &[]).await.0, 200);

    // A call at the provider when the database goes.
    let in_flight = {
        let (client, url) = (client.clone(), url(1));
        tokio::spawn(async move { post(&client, &url, &[]).await })
    };
    while provider.requests() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(server.pg_ctl("stop"), "the server stops");
    for gateway in &gateways {
        let (status, body) = post(&client, &gateway.url("/v1/chat/completions"), &[]).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"]["code"], "budget_unavailable", "{body}");
        let health = client.get(gateway.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status().as_u16(), 503);
    }
    assert_eq!(
        provider.requests(),
        2,
        "nothing admitted without a reservation"
    );
    assert_eq!(
        in_flight.await.unwrap().0,
        200,
        "the answer still reaches the agent"
    );

    assert!(server.pg_ctl("start"), "the server starts again");
    let deadline = Instant::now() + Duration::from_secs(20);
    for i in 0..2 {
        loop {
            let (status, body) = post(&client, &url(i), &[]).await;
            if status == 200 {
                break;
            }
            assert_eq!(status, 503, "{body}");
            assert!(
                Instant::now() < deadline,
                "gateway {i} did not recover: {body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // The call whose settlement the outage lost is charged at its estimate after its lease.
    let billed = provider.billed_sats(1000, 1000);
    let deadline = Instant::now() + Duration::from_secs(15);
    while charged(&server.url(), "burst") < billed && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    gateways.into_iter().for_each(Gateway::stop);
    let charged = charged(&server.url(), "burst");
    assert!(charged >= billed, "billed {billed}, charged only {charged}");
    let store = PgStore::connect(&server.url(), PgOptions::default()).unwrap();
    assert!(store.holds().unwrap().is_empty());
    assert!(store.audit_report().unwrap().is_intact());
}
