//! `ao init`, `ao serve` and `ao keys`: the gateway.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use agent_orchestrator::BackendProvider;
use agent_orchestrator::Config;
use agent_orchestrator::Orchestrator;
use agent_orchestrator::store::pg::KEYS_CHANNEL;
use agent_orchestrator::store::{ApiKeyRow, PgOptions, PgStore, SqliteStore, Store, StoreError};
use agent_orchestrator::types::{Clock, Report, SystemClock};
use ao_gateway::{ConnectionLimits, Gateway, GatewayOptions, KeyRing, hash_key, new_api_key};
use ao_sim::{Behavior, SimServer};

use nostr::{Keys, ToBech32};
use zeroize::Zeroizing;

use crate::CliError;
use crate::files::create_new;

/// The configuration file `ao serve` uses without `--config`: `$AO_CONFIG`, else `ao.toml` in the
/// data directory.
fn default_config_path() -> PathBuf {
    if let Some(path) = std::env::var_os("AO_CONFIG") {
        return PathBuf::from(path);
    }
    data_dir().join("ao.toml")
}

/// `$AO_DATA_DIR`, else `$XDG_DATA_HOME/agent-orchestrator`, else
/// `~/.local/share/agent-orchestrator`.
fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AO_DATA_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(dir).join("agent-orchestrator");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/agent-orchestrator"),
        None => PathBuf::from("ao-data"),
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct InitArgs {
    /// The directory for `ao.toml`, the database and the keys (default: the data directory,
    /// `$AO_DATA_DIR` or `~/.local/share/agent-orchestrator`).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// The configuration file (default: `$AO_CONFIG`, else `ao.toml` in the data directory).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Serve every backend from a simulated OpenAI-compatible server on loopback (clearly
    /// labelled), and create a starting configuration first if there is none.
    #[arg(long)]
    simulated: bool,
    /// The address to listen on, instead of the configuration's `server.listen`.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct KeysArgs {
    /// The configuration file (default: as for `ao serve`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KeysCommand {
    /// Create a key for an agent; prints it once. Only its hash is stored.
    Create {
        /// The agent.
        #[arg(long)]
        agent: String,
    },
    /// List keys (ids and agents, never the keys).
    List,
    /// Revoke a key by id. A running gateway stops accepting it within seconds.
    Revoke {
        /// The key's id, as `list` shows it.
        id: String,
    },
}

const STARTING_CONFIG: &str = r#"# agent-orchestrator: a starting configuration, written by `ao init`.
# Every key is documented in docs/ARCHITECTURE.md and the `ao_orchestrator::Config` docs.
# Relative paths are relative to this file's directory.

# Where the SQLite database (budgets, approvals, audit log, API keys) lives.
data_dir = "."

# Agents without a route of their own use this provider.
default_backend = "local"

# Every agent's budget unless it has its own. A limit is reached when spent >= limit.
[default_budget]
daily_limit_sats = 100000
session_limit_sats = 10000
warn_threshold_pct = 80
# Free backends are not unlimited:
daily_token_cap = 2000000

# A local Ollama server (https://ollama.com), free of charge.
[[backends]]
provider = "local"
model = "llama3"
endpoint = "http://localhost:11434"
cost_per_1k_input = 0
cost_per_1k_output = 0

# The OpenAI API, priced in sats per 1,000 tokens. Set OPENAI_API_KEY and enabled = true.
[[backends]]
provider = "openai"
model = "gpt-4o"
api_key_env = "OPENAI_API_KEY"
cost_per_1k_input = 5
cost_per_1k_output = 15
enabled = false

# NIP-90 compute from Nostr markets: each call becomes a kind-5050 job on these relays, paid over
# Lightning from the wallet whose Nostr Wallet Connect URI is in $AO_NWC_URI (a spending secret:
# never in this file). Each call reserves the bid; a DVM that asks more is not paid; a call is
# charged what was paid, fees included. `ao serve --simulated` runs a simulated DVM and wallet.
# Route an agent to it with `backend = "dvm"`.
[[backends]]
provider = "dvm"
model = "llama3"
relays = ["wss://relay.damus.io"]
# service_pubkey = "npub1..."   # ask one service provider only
max_bid_sats = 50
cost_per_1k_input = 0
cost_per_1k_output = 0
timeout_secs = 60
enabled = false

[approvals]
# Undecided requests expire after a day; a call waits 0 s and answers 403 with the approval id.
expiry_secs = 86400
wait_secs = 0

# One agent. Its gateway key is in agents/demo.key next to this file (only the hash is here):
# hand the agent that file and nothing else from this directory.
[agents.demo]
autonomy = "semi-autonomous"      # supervised | semi-autonomous | fully-autonomous
approval_above_sats = 100     # semi-autonomous: calls estimated above this need approval
api_key_sha256 = "__AGENT_KEY_HASH__"
# The operator: only decisions signed by its key approve, as with
#   ao approvals approve ID --db ao.db --key-file operator.nsec
# Its secret key is in operator.nsec next to this file. The gateway never reads it: keep it from
# agents, and better off this machine.
operator = "__OPERATOR_NPUB__"
budget = { daily_limit_sats = 5000, session_limit_sats = 1000 }

[server]
listen = "127.0.0.1:8080"
# The admin token (for /admin) is in admin.token next to this file; only the hash is here.
admin_token_sha256 = "__ADMIN_TOKEN_HASH__"
# /metrics is open unless this is set to the SHA-256 of a token it then wants as its bearer.
# metrics_token_sha256 = "..."
max_body_bytes = 1048576
client_timeout_secs = 30

# The signer nodes that sign the agent's own events (its NIP-SA profile at start, audit
# checkpoints on POST /admin/audit/agent-checkpoint), each holding one share of its key
# (`ao signer`, see the README). Give the agent `pubkey = "<the group key>"`, then:
# [signing]
# group = "group.json"                # the group file, with the nodes' transport keys
# relays = ["ws://127.0.0.1:7777"]    # where the nodes listen
# key = "coordinator.key"             # `ao transport-key --out coordinator.key`; the nodes
#                                     # are started with --coordinator <its npub>
# timeout_secs = 5
"#;

/// The files `ao init` writes into its directory. The directory and everything in it is the
/// operator's; an agent is handed its own key file from `agents/`, and nothing else.
struct Layout {
    config: PathBuf,
    admin_token: PathBuf,
    operator_key: PathBuf,
    agents: PathBuf,
    agent_key: PathBuf,
}

impl Layout {
    fn in_dir(dir: &Path) -> Self {
        let agents = dir.join("agents");
        Self {
            config: dir.join("ao.toml"),
            admin_token: dir.join("admin.token"),
            operator_key: dir.join("operator.nsec"),
            agent_key: agents.join("demo.key"),
            agents,
        }
    }
}

/// Creates `dir` (and its parents) readable by its owner only, when it does not exist yet.
fn create_private_dir(dir: &Path) -> Result<(), CliError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| CliError::WriteFile {
        path: dir.to_owned(),
        source,
    })
}

/// Writes a starting configuration, the demo agent's key, the admin token and the operator's key
/// into `dir`, and creates the database. Refuses to overwrite anything.
fn init_into(dir: &Path) -> Result<PathBuf, CliError> {
    let files = Layout::in_dir(dir);
    for path in [
        &files.config,
        &files.agent_key,
        &files.admin_token,
        &files.operator_key,
    ] {
        if path.exists() {
            return Err(CliError::Exists(path.clone()));
        }
    }
    let (agent_key, _) = new_api_key();
    let (admin_token, _) = new_api_key();
    let operator = Keys::generate();
    let npub = operator
        .public_key()
        .to_bech32()
        .map_err(|_| CliError::KeyEncoding)?;
    let nsec = Zeroizing::new(
        operator
            .secret_key()
            .to_bech32()
            .map_err(|_| CliError::KeyEncoding)?
            + "\n",
    );
    let text = STARTING_CONFIG
        .replace("__AGENT_KEY_HASH__", &hash_key(&agent_key))
        .replace("__ADMIN_TOKEN_HASH__", &hash_key(&admin_token))
        .replace("__OPERATOR_NPUB__", &npub);
    Config::from_toml(&text)?;
    create_private_dir(dir)?;
    create_private_dir(&files.agents)?;
    create_new(&files.agent_key, &format!("{agent_key}\n"), true)?;
    create_new(&files.admin_token, &format!("{admin_token}\n"), true)?;
    create_new(&files.operator_key, &nsec, true)?;
    create_new(&files.config, &text, false)?;
    // Components drop the `./` of the configuration's `data_dir = "."`.
    let database: PathBuf = Config::load(&files.config)?
        .database_path()
        .components()
        .collect();
    drop(SqliteStore::open(&database)?);
    let shown = |path: &Path| path.display().to_string();
    println!(
        "wrote {} (commented; edit it to add agents and backends)",
        shown(&files.config)
    );
    println!(
        "wrote {} (the `demo` agent's gateway key: hand the agent this file, nothing else from {})",
        shown(&files.agent_key),
        shown(dir)
    );
    println!(
        "wrote {} (the admin token for /admin: the operator's, never an agent's)",
        shown(&files.admin_token)
    );
    println!(
        "wrote {} (the operator's secret key, {npub}: approvals and checkpoints need its signature; keep it from agents, better off this machine)",
        shown(&files.operator_key)
    );
    println!(
        "created {} (the database, readable by its owner only)",
        shown(&database)
    );
    Ok(files.config)
}

pub(crate) fn init(args: InitArgs) -> Result<ExitCode, CliError> {
    let dir = args.dir.unwrap_or_else(data_dir);
    init_into(&dir)?;
    println!(
        "start the gateway with: ao serve --config {}",
        dir.join("ao.toml").display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The gateway's runtime. Its blocking pool (SQLite writes, holds and settlements) is capped:
/// they all wait for the one SQLite writer in turn, so more threads only add stacks and malloc
/// arenas. Tokio's default of 512 let a soak grow to about 200 threads and its resident memory
/// with them.
const BLOCKING_THREADS: usize = 16;

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(BLOCKING_THREADS)
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

pub(crate) fn serve(args: ServeArgs) -> Result<ExitCode, CliError> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let path = args.config.clone().unwrap_or_else(default_config_path);
    if !path.exists() {
        if !args.simulated {
            return Err(CliError::NoConfig(path));
        }
        let dir = path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_owned);
        init_into(&dir)?;
    }
    runtime()?.block_on(serve_async(path, args))
}

async fn serve_async(path: PathBuf, args: ServeArgs) -> Result<ExitCode, CliError> {
    let mut config = Config::load(&path)?;
    let _sim;
    if args.simulated {
        let sim = SimServer::start(Behavior::reply())
            .await
            .map_err(CliError::Simulator)?;
        for backend in &mut config.backends {
            if *backend.provider.get_ref() == BackendProvider::Dvm {
                continue;
            }
            backend.endpoint = Some(toml::Spanned::new(0..0, sim.url()));
            backend.api_key_env = None;
        }
        eprintln!(
            "SIMULATED backends: every backend is served by ao-sim at {} (not a language model)",
            sim.url()
        );
        _sim = sim;
    }
    let has_dvm = config
        .backends
        .iter()
        .any(|b| *b.provider.get_ref() == BackendProvider::Dvm);
    let (_dvm, wallet) = if args.simulated && has_dvm {
        let (dvm, wallet) = crate::simulated::simulated_dvm(&mut config).await?;
        (Some(dvm), Some(wallet))
    } else {
        (None, None)
    };
    let (orchestrator, store): (Orchestrator, Store) =
        Orchestrator::from_config_with_wallet(&config, wallet).map_err(CliError::Start)?;
    let keys = KeyRing::load(&config, &store)?;
    let options = gateway_options(&config);
    let gateway = Gateway::new(orchestrator, store.clone(), keys.clone(), options);
    let listen = args.listen.unwrap_or_else(|| config.server.listen.clone());
    let bind_error = |source| CliError::Bind {
        addr: listen.clone(),
        source,
    };
    let shutdown = shutdown_signal();
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    println!(
        "agent-orchestrator gateway listening on http://{addr} (config {})",
        path.display()
    );
    let key_file = path.parent().map(|d| Layout::in_dir(d).agent_key);
    if let Some(key_file) = key_file.filter(|k| k.exists()) {
        println!(
            "try it: curl -s http://{addr}/v1/chat/completions -H \"Authorization: Bearer $(cat {})\" -H 'content-type: application/json' -d '{{\"model\":\"auto\",\"messages\":[{{\"role\":\"user\",\"content\":\"hello\"}}]}}'",
            key_file.display()
        );
    }
    let reload = follow_keys(&keys, &store, &config);
    sign_profile_at_start(&gateway);
    gateway
        .serve(listener, shutdown)
        .await
        .map_err(CliError::Serve)?;
    reload.abort();
    println!("gateway stopped; every cost and audit entry is written");
    Ok(ExitCode::SUCCESS)
}

/// With `[signing]`: signs the agent's NIP-SA profile (kind 39200) through its signer nodes, in
/// the background, and says so in one line. Nodes that do not sign are an error line, not a
/// stop: the gateway serves meanwhile, and `POST /admin/signing/profile` signs it again.
fn sign_profile_at_start(gateway: &Gateway) {
    let Some(signing) = gateway.orchestrator().signing().cloned() else {
        return;
    };
    tokio::spawn(async move {
        match signing.profile().await {
            Ok(event) => println!(
                "agent `{}`: profile (kind 39200) signed by its signer nodes, event {}",
                signing.agent(),
                event.id
            ),
            Err(error) => tracing::error!(
                agent = signing.agent(),
                error = %Report::new(&error),
                "cannot sign the agent's profile at start; the gateway serves on, and POST /admin/signing/profile signs it again"
            ),
        }
    });
}

/// Keeps the gateway's keys current: a key created or revoked elsewhere (`ao keys`, another
/// gateway's admin API) is read within a second; on PostgreSQL, at once, when the gateway that
/// changed it announces it.
fn follow_keys(keys: &KeyRing, store: &Store, config: &Config) -> tokio::task::JoinHandle<()> {
    let (keys, store, config) = (keys.clone(), store.clone(), config.clone());
    let (wake, mut woken) = tokio::sync::mpsc::unbounded_channel::<()>();
    let listener = store.postgres().map(|pg| {
        pg.listen(KEYS_CHANNEL, move |_| {
            let _ = wake.send(());
        })
    });
    tokio::spawn(async move {
        let _listener = listener;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                Some(()) = woken.recv() => {}
            }
            let (keys, store, config) = (keys.clone(), store.clone(), config.clone());
            let reloaded = tokio::task::spawn_blocking(move || keys.reload(&config, &store)).await;
            if let Ok(Err(error)) = reloaded {
                tracing::error!(error = %Report::new(&error), "cannot reload API keys");
            }
        }
    })
}

/// The gateway's options from the `[server]` section.
fn gateway_options(config: &Config) -> GatewayOptions {
    let server = &config.server;
    GatewayOptions {
        admin_token_sha256: server.admin_token_sha256.clone(),
        metrics_token_sha256: server.metrics_token_sha256.clone(),
        max_body_bytes: server.max_body_bytes,
        client_timeout: Duration::from_secs(server.client_timeout_secs),
        max_stream: Duration::from_secs(server.max_stream_secs),
        connections: ConnectionLimits {
            header_read_timeout: Duration::from_secs(server.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(server.idle_timeout_secs),
            max_connections: server.max_connections,
            drain_timeout: Duration::from_secs(server.drain_timeout_secs),
        },
    }
}

/// SIGTERM or Ctrl-C. The handlers are installed when this is called (before the gateway says
/// it listens), not when the future is first polled: a signal sent at once is not lost.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        let term = async {
            match term {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {},
            () = term => {},
        }
        eprintln!("shutting down: finishing requests in flight");
    }
}

/// The database `config` names: PostgreSQL for a URL (or `$AO_DATABASE_URL`), else its SQLite
/// file.
fn open_configured(config: &Config) -> Result<Store, CliError> {
    match config.database_url() {
        Some(url) => {
            let options = PgOptions {
                max_connections: 2,
                ..PgOptions::default()
            };
            Ok(PgStore::connect(&url, options)
                .map_err(StoreError::from)?
                .into())
        }
        None => Ok(SqliteStore::open(config.database_path())?.into()),
    }
}

pub(crate) fn keys(args: KeysArgs) -> Result<ExitCode, CliError> {
    let path = args.config.unwrap_or_else(default_config_path);
    let config = Config::load(&path)?;
    let store = open_configured(&config)?;
    // A clock that cannot be read is an error, not a key dated 1970.
    let now = SystemClock.now()?;
    match args.command {
        KeysCommand::Create { agent } => {
            if !config.agents.contains_key(&agent) {
                return Err(CliError::UnknownAgent {
                    agent,
                    config: path,
                });
            }
            let (key, id) = new_api_key();
            store.add_api_key(&ApiKeyRow {
                id: id.clone(),
                agent: agent.clone(),
                sha256: hash_key(&key),
                created_at: now,
                revoked_at: None,
            })?;
            eprintln!("key {id} for agent `{agent}` (shown once; only its hash is stored):");
            println!("{key}");
        }
        KeysCommand::List => {
            for k in store.api_keys()? {
                let state = if k.revoked_at.is_some() {
                    "revoked"
                } else {
                    "live"
                };
                println!("{}  {:<16}  {state}", k.id, k.agent);
            }
        }
        KeysCommand::Revoke { id } => {
            if store.revoke_api_key(&id, now)? {
                println!("revoked {id}");
            } else {
                return Err(CliError::NoLiveKey(id));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
