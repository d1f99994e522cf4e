//! The gateway end to end over HTTP: a real client, the gateway on loopback, and simulated
//! OpenAI-compatible backends (`ao-sim`) behind it.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]
#![allow(missing_docs, reason = "test code")]

mod adversary;
mod audit;
mod console;
mod http;
mod limits;
mod metrics;

use std::net::SocketAddr;
use std::time::Duration;

use ao_gateway::{Gateway, GatewayOptions, KeyRing, hash_key};
use ao_orchestrator::{Config, Orchestrator};
use ao_sim::SimServer;
use ao_store::Store;
use nostr::Keys;
use tokio::sync::oneshot;

pub(crate) const ORACLE_KEY: &str = "ao-test-oracle-key";
pub(crate) const SISYPHUS_KEY: &str = "ao-test-sisyphus-key";
pub(crate) const ADMIN_TOKEN: &str = "ao-test-admin-token";

pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    pub(crate) gateway: Gateway,
    pub(crate) store: Store,
    pub(crate) operator: Keys,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Running {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the gateway gracefully and waits until it has.
    pub(crate) async fn stop(mut self) -> (Gateway, Store) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap().unwrap();
        (self.gateway, self.store)
    }
}

/// A gateway with OpenAI (5/15 sats per 1k) at `first` and Codex (3/15, the default) at `second`.
/// `oracle` is fully autonomous with an 80-sat daily budget; `sisyphus` is supervised by an
/// operator key.
pub(crate) async fn start(first: &SimServer, second: &SimServer, max_body: usize) -> Running {
    start_with(first, second, max_body, Duration::from_secs(5)).await
}

/// [`start`], with the time a client has to send its request body.
pub(crate) async fn start_with(
    first: &SimServer,
    second: &SimServer,
    max_body: usize,
    client_timeout: Duration,
) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let operator = Keys::generate();
    let text = format!(
        r#"
data_dir = "{dir}"
default_backend = "codex"

[[backends]]
provider = "openai"
model = "gpt-4"
endpoint = "{first}"
cost_per_1k_input = 5
cost_per_1k_output = 15
timeout_secs = 1
max_retries = 0

[[backends]]
provider = "codex"
model = "sonnet-4"
endpoint = "{second}"
cost_per_1k_input = 3
cost_per_1k_output = 15
timeout_secs = 1
max_retries = 0

[agents.oracle]
autonomy = "fully-autonomous"
api_key_sha256 = "{oracle}"
budget = {{ daily_limit_sats = 80, session_limit_sats = 1000 }}

[agents.sisyphus]
autonomy = "supervised"
operator = "{operator}"
api_key_sha256 = "{sisyphus}"
"#,
        dir = dir.path().display(),
        first = first.url(),
        second = second.url(),
        oracle = hash_key(ORACLE_KEY),
        sisyphus = hash_key(SISYPHUS_KEY),
        operator = operator.public_key().to_hex(),
    );
    serve_config(
        &text,
        dir,
        operator,
        GatewayOptions {
            admin_token_sha256: Some(hash_key(ADMIN_TOKEN)),
            metrics_token_sha256: None,
            max_body_bytes: max_body,
            client_timeout,
            ..GatewayOptions::default()
        },
    )
    .await
}

/// A gateway serving the configuration `text`, whose data directory is `dir`.
pub(crate) async fn serve_config(
    text: &str,
    dir: tempfile::TempDir,
    operator: Keys,
    options: GatewayOptions,
) -> Running {
    let config = Config::from_toml(text).unwrap();
    let (orchestrator, store): (Orchestrator, Store) = Orchestrator::from_config(&config).unwrap();
    let keys = KeyRing::load(&config, &store).unwrap();
    let gateway = Gateway::new(orchestrator, store.clone(), keys, options);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = {
        let gateway = gateway.clone();
        tokio::spawn(async move {
            gateway
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await
        })
    };
    Running {
        addr,
        gateway,
        store,
        operator,
        stop: Some(stop),
        task,
        _dir: dir,
    }
}
