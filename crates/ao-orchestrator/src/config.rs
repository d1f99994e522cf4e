use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ao_budget::{BudgetConfig, RateLimits};
use ao_identity::{AutonomyLevel, parse_public_key};
use ao_routing::BackendProvider;
use ao_types::AgentName;
use serde::Deserialize;
use toml::Spanned;

mod sections;
mod signing;

pub use sections::{
    ApprovalsSection, DatabaseEntry, DatabaseSection, RequestsSection, ServerSection,
    SigningSection,
};

/// A configuration file could not be used. The message names the line when it can.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", match line { Some(l) => format!("config line {l}: "), None => String::new() })]
pub struct ConfigError {
    /// The 1-based line of the offending value, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// A budget in the configuration: the spec's three fields, and an optional daily token cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetEntry {
    /// Most an agent may spend in one UTC day, in sats.
    pub daily_limit_sats: u64,
    /// Most an agent may spend in one session, in sats.
    pub session_limit_sats: u64,
    /// Warn at this percentage of either limit.
    #[serde(default = "default_warn")]
    pub warn_threshold_pct: u8,
    /// Most tokens an agent may use in one UTC day, free backends included.
    #[serde(default)]
    pub daily_token_cap: Option<u64>,
}

fn default_warn() -> u8 {
    80
}

impl BudgetEntry {
    /// The spec's budget.
    pub fn budget(&self) -> BudgetConfig {
        BudgetConfig {
            daily_limit_sats: self.daily_limit_sats,
            session_limit_sats: self.session_limit_sats,
            warn_threshold_pct: self.warn_threshold_pct,
        }
    }
}

/// One backend.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendEntry {
    /// `codex`, `openai`, `gpt-oss`, `local` or `dvm` (NIP-90 compute paid over Lightning).
    pub provider: Spanned<BackendProvider>,
    /// The model sent to the backend.
    pub model: String,
    /// The base URL (ending in `/v1`, or the server root). Defaults per provider.
    #[serde(default)]
    pub endpoint: Option<Spanned<String>>,
    /// The environment variable holding the API key; none for a local server without one.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Sats per 1,000 input tokens.
    pub cost_per_1k_input: u64,
    /// Sats per 1,000 output tokens.
    pub cost_per_1k_output: u64,
    /// Whether the backend may be routed to.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Seconds before a reply (or a silent stream) times out. Default 120.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// Retries after a 429, a 5xx, a timeout or a connection failure. Default 2. A retry after
    /// an attempt the provider may have billed goes ahead only if the budget covers it. Not for
    /// `dvm`: a job is never sent twice in one call (a later call with the same request takes
    /// its job up).
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// The input tokens one image costs on this backend. Default 4,000, above OpenAI's
    /// high-detail price for GPT-4o and the GPT-4.1 and o-series models; set it higher for
    /// models that price images higher (GPT-4o mini counts an image as up to about 48,000).
    #[serde(default)]
    pub image_tokens: Option<u64>,
    /// `dvm` only: the relays (`ws://` or `wss://`) jobs are published on and answered from.
    #[serde(default)]
    pub relays: Vec<Spanned<String>>,
    /// `dvm` only: the one service provider asked (hex or npub); unset, any may answer.
    #[serde(default)]
    pub service_pubkey: Option<Spanned<String>>,
    /// `dvm` only: the NIP-90 job kind. Default 5050 (text generation).
    #[serde(default)]
    pub job_kind: Option<Spanned<u16>>,
    /// `dvm` only: the bid, the most a DVM may ask for one job, in sats. Required. Each call
    /// reserves it and a routing fee allowance (1%, at least 1 sat); a DVM that asks more than
    /// the bid is not paid.
    #[serde(default)]
    pub max_bid_sats: Option<Spanned<u64>>,
    /// `dvm` only: the environment variable with the wallet's Nostr Wallet Connect URI. Default
    /// `AO_NWC_URI`. The URI is a spending secret: it is never written to the file.
    #[serde(default)]
    pub wallet_uri_env: Option<String>,
}

fn yes() -> bool {
    true
}

/// One agent.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentEntry {
    /// The provider the agent is routed to; the default backend when absent.
    #[serde(default)]
    pub backend: Option<Spanned<BackendProvider>>,
    /// The model name in the agent's identity.
    #[serde(default)]
    pub model: Option<String>,
    /// The agent's Nostr key (hex or npub), for its identity.
    #[serde(default)]
    pub pubkey: Option<Spanned<String>>,
    /// How much the agent may do alone. Default `supervised`.
    #[serde(default)]
    pub autonomy: AutonomyLevel,
    /// The estimated cost above which a semi-autonomous agent needs approval. Default 1000.
    /// (`approval_threshold_sats`, its earlier name, is read too.)
    #[serde(default, alias = "approval_threshold_sats")]
    pub approval_above_sats: Option<u64>,
    /// The operator who approves, hex or npub. With one, only signed approvals count.
    #[serde(default)]
    pub operator: Option<Spanned<String>>,
    /// Guardians (hex or npub) of whom `guardians_required` must approve.
    #[serde(default)]
    pub guardians: Vec<Spanned<String>>,
    /// Guardians required. Default: all of them.
    #[serde(default)]
    pub guardians_required: Option<u32>,
    /// The agent's own budget; the default budget when absent.
    #[serde(default)]
    pub budget: Option<BudgetEntry>,
    /// The SHA-256 (hex) of the agent's gateway bearer key; see `ao keys`.
    #[serde(default)]
    pub api_key_sha256: Option<Spanned<String>>,
    /// The agent's rate limits; the default ones when absent.
    #[serde(default)]
    pub rate_limits: Option<RateLimits>,
}

/// The whole configuration, read from TOML. Unknown keys and bad values are errors that name the
/// line.
///
/// ```
/// let config = ao_orchestrator::Config::from_toml(r#"
/// default_backend = "codex"
///
/// [[backends]]
/// provider = "codex"
/// model = "sonnet-4"
/// api_key_env = "OPENAI_API_KEY"
/// cost_per_1k_input = 3
/// cost_per_1k_output = 15
///
/// [agents.oracle]
/// autonomy = "semi-autonomous"
/// "#)?;
/// assert_eq!(config.agents.len(), 1);
/// # Ok::<(), ao_orchestrator::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the database lives. Default: `$AO_DATA_DIR`, else `$XDG_DATA_HOME/agent-orchestrator`,
    /// else `~/.local/share/agent-orchestrator`. A relative path is relative to the config file.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// The database: a SQLite file's path (`database = "ao.db"`, the default, in the data
    /// directory), or a `[database]` table with `path`, or `url = "postgres://..."` for
    /// PostgreSQL (shared by any number of gateways), `lease_secs` and `max_connections`.
    #[serde(default)]
    pub database: Option<DatabaseEntry>,
    /// The provider of agents without a route.
    pub default_backend: Spanned<BackendProvider>,
    /// The budget of agents without their own.
    #[serde(default)]
    pub default_budget: Option<BudgetEntry>,
    /// The rate limits of agents without their own: `requests_per_minute`,
    /// `tokens_per_minute` (reserved tokens) and `concurrent`. None by default.
    #[serde(default)]
    pub default_rate_limits: Option<RateLimits>,
    /// The backends.
    #[serde(default)]
    pub backends: Vec<BackendEntry>,
    /// The agents, by name.
    #[serde(default)]
    pub agents: BTreeMap<String, AgentEntry>,
    /// Approval settings.
    #[serde(default)]
    pub approvals: ApprovalsSection,
    /// What requests may ask for.
    #[serde(default)]
    pub requests: RequestsSection,
    /// The gateway.
    #[serde(default)]
    pub server: ServerSection,
    /// The signer nodes that sign the agent's events; none by default.
    #[serde(default)]
    pub signing: Option<SigningSection>,
    #[serde(skip)]
    text: String,
    #[serde(skip)]
    base: Option<PathBuf>,
}

impl Config {
    /// Reads a configuration from TOML text, and checks what the types alone cannot.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError {
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().trim().to_owned(),
        })?;
        config.text = text.to_owned();
        config.check()?;
        Ok(config)
    }

    /// Reads a configuration file. Relative paths in it are relative to the file's directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            line: None,
            message: format!("cannot read `{}`: {e}", path.display()),
        })?;
        let mut config = Self::from_toml(&text).map_err(|e| ConfigError {
            line: e.line,
            message: format!("{}: {}", path.display(), e.message),
        })?;
        config.base = path.parent().map(Path::to_owned);
        config.check_signing_files().map_err(|e| ConfigError {
            line: e.line,
            message: format!("{}: {}", path.display(), e.message),
        })?;
        Ok(config)
    }

    fn error_at<T>(&self, spanned: &Spanned<T>, message: String) -> ConfigError {
        ConfigError {
            line: Some(line_of(&self.text, spanned.span().start)),
            message,
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        let providers = self.check_backends()?;
        if !providers.contains(self.default_backend.get_ref()) {
            return Err(self.error_at(
                &self.default_backend,
                format!(
                    "default_backend `{}` is not among the configured backends",
                    self.default_backend.get_ref()
                ),
            ));
        }
        for (name, agent) in &self.agents {
            self.check_agent(name, agent, &providers)?;
        }
        self.check_database()?;
        self.check_signing()
    }

    fn check_database(&self) -> Result<(), ConfigError> {
        let Some(database) = &self.database else {
            return Ok(());
        };
        let section = database.section();
        if let Some(url) = &section.url {
            if section.path.is_some() {
                return Err(self.error_at(
                    url,
                    "database: give `url` (PostgreSQL) or `path` (SQLite), not both".into(),
                ));
            }
            let text = url.get_ref();
            if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
                return Err(self.error_at(
                    url,
                    "database.url must start with postgres:// (for a SQLite file, give `path`)"
                        .into(),
                ));
            }
        }
        if section.lease_secs == 0 || section.max_connections == 0 {
            return Err(ConfigError {
                line: self
                    .text
                    .find("[database]")
                    .map(|at| line_of(&self.text, at)),
                message: "database.lease_secs and database.max_connections must be at least 1"
                    .into(),
            });
        }
        Ok(())
    }

    /// Checks each backend; returns the providers configured.
    fn check_backends(&self) -> Result<Vec<BackendProvider>, ConfigError> {
        let mut seen: Vec<BackendProvider> = Vec::new();
        for backend in &self.backends {
            let provider = *backend.provider.get_ref();
            self.check_dvm(backend)?;
            if seen.contains(&provider) {
                return Err(self.error_at(
                    &backend.provider,
                    format!("a second `{provider}` backend; each provider may appear once"),
                ));
            }
            seen.push(provider);
            if let Some(endpoint) = &backend.endpoint
                && !(endpoint.get_ref().starts_with("http://")
                    || endpoint.get_ref().starts_with("https://"))
            {
                return Err(self.error_at(
                    endpoint,
                    format!(
                        "endpoint `{}` must start with http:// or https://",
                        endpoint.get_ref()
                    ),
                ));
            }
        }
        Ok(seen)
    }

    /// Checks the `dvm` fields: set on a `dvm` backend (relays and a bid required), on no other.
    fn check_dvm(&self, backend: &BackendEntry) -> Result<(), ConfigError> {
        if *backend.provider.get_ref() != BackendProvider::Dvm {
            let stray = backend
                .relays
                .first()
                .map(|r| (r.span(), "relays"))
                .or(backend
                    .service_pubkey
                    .as_ref()
                    .map(|k| (k.span(), "service_pubkey")))
                .or(backend.job_kind.as_ref().map(|k| (k.span(), "job_kind")))
                .or(backend
                    .max_bid_sats
                    .as_ref()
                    .map(|b| (b.span(), "max_bid_sats")));
            if let Some((span, field)) = stray {
                return Err(ConfigError {
                    line: Some(line_of(&self.text, span.start)),
                    message: format!("`{field}` is for the `dvm` provider only"),
                });
            }
            return Ok(());
        }
        if backend.endpoint.is_some() || backend.api_key_env.is_some() {
            return Err(self.error_at(
                &backend.provider,
                "a `dvm` backend has `relays` and a wallet (`wallet_uri_env`), not an `endpoint` or `api_key_env`".into(),
            ));
        }
        if backend.relays.is_empty() {
            return Err(self.error_at(
                &backend.provider,
                "a `dvm` backend needs `relays` (ws:// or wss:// URLs)".into(),
            ));
        }
        for relay in &backend.relays {
            let url = relay.get_ref();
            if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                return Err(self.error_at(
                    relay,
                    format!("relay `{url}` must start with ws:// or wss://"),
                ));
            }
        }
        match &backend.max_bid_sats {
            None => {
                return Err(self.error_at(
                    &backend.provider,
                    "a `dvm` backend needs `max_bid_sats`, the most one job may cost".into(),
                ));
            }
            Some(bid) if *bid.get_ref() == 0 => {
                return Err(self.error_at(bid, "max_bid_sats must be at least 1".into()));
            }
            Some(_) => {}
        }
        if let Some(kind) = &backend.job_kind
            && !(5000..=5999).contains(kind.get_ref())
        {
            return Err(self.error_at(
                kind,
                format!(
                    "job_kind {} is not a NIP-90 job kind (5000-5999)",
                    kind.get_ref()
                ),
            ));
        }
        if let Some(key) = &backend.service_pubkey {
            parse_public_key(key.get_ref())
                .map_err(|e| self.error_at(key, format!("service_pubkey: {e}")))?;
        }
        Ok(())
    }

    /// Checks agent `name`: its name, route, keys, guardians and key hash.
    fn check_agent(
        &self,
        name: &str,
        agent: &AgentEntry,
        providers: &[BackendProvider],
    ) -> Result<(), ConfigError> {
        let known = |p: &BackendProvider| providers.contains(p);
        AgentName::new(name).map_err(|e| ConfigError {
            line: self
                .text
                .find(&format!("agents.{name}"))
                .map(|at| line_of(&self.text, at)),
            message: format!("agents.{name}: {e}"),
        })?;
        if let Some(backend) = &agent.backend
            && !known(backend.get_ref())
        {
            return Err(self.error_at(
                backend,
                format!(
                    "agents.{name}.backend: no `{}` backend is configured",
                    backend.get_ref()
                ),
            ));
        }
        for key in agent
            .pubkey
            .iter()
            .chain(&agent.operator)
            .chain(&agent.guardians)
        {
            parse_public_key(key.get_ref())
                .map_err(|e| self.error_at(key, format!("agents.{name}: {e}")))?;
        }
        if let Some(required) = agent.guardians_required {
            let n = agent.guardians.len();
            if required == 0 || usize::try_from(required).map_or(true, |r| r > n) {
                return Err(ConfigError {
                    line: None,
                    message: format!(
                        "agents.{name}.guardians_required is {required} but {n} guardians are listed"
                    ),
                });
            }
        }
        if let Some(hash) = &agent.api_key_sha256
            && !(hash.get_ref().len() == 64
                && hash.get_ref().bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(self.error_at(
                hash,
                format!("agents.{name}.api_key_sha256 must be 64 hex characters"),
            ));
        }
        Ok(())
    }

    /// `path` taken from the configuration file's directory when it is relative.
    fn resolve(&self, path: &Path) -> PathBuf {
        match (&self.base, path.is_relative()) {
            (Some(base), true) => base.join(path),
            _ => path.to_owned(),
        }
    }

    /// The data directory, as the configuration or the environment say.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.data_dir {
            return self.resolve(dir);
        }
        default_data_dir()
    }

    /// The SQLite database file (unused when [`database_url`](Config::database_url) is set).
    pub fn database_path(&self) -> PathBuf {
        match self
            .database
            .as_ref()
            .and_then(|d| d.section().path.as_ref())
        {
            Some(path) if path.is_absolute() => path.clone(),
            Some(path) => self.data_dir().join(path),
            None => self.data_dir().join("ao.db"),
        }
    }

    /// The PostgreSQL database, if one is chosen: `$AO_DATABASE_URL` when set (so that a
    /// password stays out of the file), else `[database] url`.
    pub fn database_url(&self) -> Option<String> {
        std::env::var("AO_DATABASE_URL")
            .ok()
            .filter(|url| !url.trim().is_empty())
            .or_else(|| {
                self.database
                    .as_ref()
                    .and_then(|d| d.section().url.as_ref())
                    .map(|url| url.get_ref().clone())
            })
    }

    /// The `[database]` settings (their defaults when absent).
    pub fn database_settings(&self) -> DatabaseSection {
        self.database
            .as_ref()
            .map(|d| d.section().clone())
            .unwrap_or_default()
    }
}

/// `$AO_DATA_DIR`, else `$XDG_DATA_HOME/agent-orchestrator`, else
/// `$HOME/.local/share/agent-orchestrator`, else `./ao-data`.
pub(crate) fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AO_DATA_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(dir).join("agent-orchestrator");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".local/share/agent-orchestrator");
    }
    PathBuf::from("ao-data")
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len())).map_or(1, |before| {
        before.bytes().filter(|b| *b == b'\n').count() + 1
    })
}
