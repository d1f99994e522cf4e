//! The sections of the configuration: requests, approvals, the gateway, the database and the
//! signer nodes.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

/// What requests may ask for, and how they are estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestsSection {
    /// The output tokens assumed (and asked for) when a request sets no limit. Default 1024.
    #[serde(default = "default_max_tokens")]
    pub default_max_tokens: u64,
    /// The most choices (`n`) a request may ask for. Default 8.
    #[serde(default = "default_max_choices")]
    pub max_choices: u64,
}

fn default_max_tokens() -> u64 {
    1_024
}

fn default_max_choices() -> u64 {
    ao_routing::http::DEFAULT_MAX_CHOICES
}

impl Default for RequestsSection {
    fn default() -> Self {
        Self {
            default_max_tokens: default_max_tokens(),
            max_choices: default_max_choices(),
        }
    }
}

/// Approval settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsSection {
    /// Seconds before an undecided request expires. Default 86400.
    #[serde(default = "default_expiry")]
    pub expiry_secs: u64,
    /// Seconds a call waits for a decision before answering "needs approval". Default 0: answer at
    /// once, and let the client retry with the approval id.
    #[serde(default)]
    pub wait_secs: u64,
    /// Undecided requests an agent may have at once; past it a call needing approval is refused
    /// (429 `too_many_pending_approvals`). Default 64.
    #[serde(default = "default_max_pending")]
    pub max_pending: usize,
    /// Seconds an approved request stays usable after its decision. Default 3600.
    #[serde(default = "default_usable_for")]
    pub usable_for_secs: u64,
}

fn default_max_pending() -> usize {
    ao_approvals::DEFAULT_MAX_PENDING
}

fn default_usable_for() -> u64 {
    ao_approvals::DEFAULT_USABLE_FOR.as_secs()
}

fn default_expiry() -> u64 {
    86_400
}

impl Default for ApprovalsSection {
    fn default() -> Self {
        Self {
            expiry_secs: default_expiry(),
            wait_secs: 0,
            max_pending: default_max_pending(),
            usable_for_secs: default_usable_for(),
        }
    }
}

/// The gateway (`ao serve`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// The address to listen on. Default `127.0.0.1:8080`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The SHA-256 (hex) of the admin token for `/admin`.
    #[serde(default)]
    pub admin_token_sha256: Option<String>,
    /// The SHA-256 (hex) of the bearer token `/metrics` wants. Unset, `/metrics` is open.
    #[serde(default)]
    pub metrics_token_sha256: Option<String>,
    /// The largest request body accepted, in bytes. Default 1 MiB.
    #[serde(default = "default_body")]
    pub max_body_bytes: usize,
    /// Seconds a client may take to send its request. Default 30.
    #[serde(default = "default_client_timeout")]
    pub client_timeout_secs: u64,
    /// Seconds a client may take to send a request's headers; a kept-alive connection with no
    /// new request is closed after as long. Default 10.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_secs: u64,
    /// Seconds a connection may stay with no byte moving either way. Default 600 (above the
    /// slowest call: a non-streamed call sends nothing while its backend works).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// The most connections served at once; more wait in the listen backlog. Default 10000.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The longest a streamed reply runs, in seconds. Default 600.
    #[serde(default = "default_max_stream")]
    pub max_stream_secs: u64,
    /// Seconds a graceful shutdown waits for requests in flight. Default 30.
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout_secs: u64,
}

fn default_header_read_timeout() -> u64 {
    10
}

fn default_idle_timeout() -> u64 {
    600
}

fn default_max_connections() -> usize {
    10_000
}

fn default_max_stream() -> u64 {
    600
}

fn default_drain_timeout() -> u64 {
    30
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

fn default_body() -> usize {
    1024 * 1024
}

fn default_client_timeout() -> u64 {
    30
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            admin_token_sha256: None,
            metrics_token_sha256: None,
            max_body_bytes: default_body(),
            client_timeout_secs: default_client_timeout(),
            header_read_timeout_secs: default_header_read_timeout(),
            idle_timeout_secs: default_idle_timeout(),
            max_connections: default_max_connections(),
            max_stream_secs: default_max_stream(),
            drain_timeout_secs: default_drain_timeout(),
        }
    }
}

/// The `[database]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    /// The SQLite file (relative to the data directory). Default `ao.db`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// A PostgreSQL database (`postgres://user@host:port/database`): the ledger, budgets,
    /// approvals, API keys and the audit log live there, shared by every gateway that names it.
    /// `$AO_DATABASE_URL` overrides it.
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// With PostgreSQL: how long a call's hold lasts without renewal. A gateway renews the holds
    /// of its calls; the holds of a gateway that died are charged, at their estimates, by
    /// another one this long after their last renewal. Default 30.
    #[serde(default = "default_lease")]
    pub lease_secs: u64,
    /// With PostgreSQL: the most connections this gateway opens. Default 16.
    #[serde(default = "default_max_db_connections")]
    pub max_connections: usize,
}

fn default_lease() -> u64 {
    30
}

fn default_max_db_connections() -> usize {
    16
}

impl Default for DatabaseSection {
    fn default() -> Self {
        Self {
            path: None,
            url: None,
            lease_secs: default_lease(),
            max_connections: default_max_db_connections(),
        }
    }
}

/// `database = "file.db"`, or a `[database]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseEntry(DatabaseSection);

impl DatabaseEntry {
    /// The settings, a bare path being `path`.
    pub fn section(&self) -> &DatabaseSection {
        &self.0
    }
}

impl<'de> Deserialize<'de> for DatabaseEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entry;
        impl<'de> serde::de::Visitor<'de> for Entry {
            type Value = DatabaseEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a SQLite file's path, or a [database] table")
            }
            fn visit_str<E: serde::de::Error>(self, path: &str) -> Result<DatabaseEntry, E> {
                Ok(DatabaseEntry(DatabaseSection {
                    path: Some(PathBuf::from(path)),
                    ..DatabaseSection::default()
                }))
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                map: M,
            ) -> Result<DatabaseEntry, M::Error> {
                DatabaseSection::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(DatabaseEntry)
            }
        }
        deserializer.deserialize_any(Entry)
    }
}

/// The `[signing]` table: the signer nodes that sign the agent's events (its kind-39200 profile,
/// its audit checkpoints), reached over relays by a coordinator that holds no share. Without it
/// nothing is signed by the runtime.
///
/// ```toml
/// [signing]
/// group = "group.json"                # the group file (`ao keygen`), with the nodes' transport keys
/// relays = ["ws://127.0.0.1:7777"]    # where the nodes listen (`ao signer --relay`)
/// key = "coordinator.key"             # this coordinator's transport key (`ao transport-key`)
/// timeout_secs = 5                    # how long each round waits for the nodes
/// ```
///
/// The key file is the one `ao sign --relay --key` reads: an nsec or 64 hex characters, whose
/// npub each node is given with `--coordinator`. Relative paths are taken from the
/// configuration file's directory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningSection {
    /// The group file.
    pub group: Spanned<PathBuf>,
    /// The relays the nodes listen on (`ws://` or `wss://`).
    pub relays: Spanned<Vec<Spanned<String>>>,
    /// The coordinator's transport key file. It holds a secret; the configuration holds its
    /// path only.
    pub key: Spanned<PathBuf>,
    /// How long each round of a signing waits for the nodes, in seconds. Default 5.
    #[serde(default = "default_signing_timeout")]
    pub timeout_secs: Spanned<u64>,
}

/// The longest a signing round may be told to wait. A signing waits a round for each attempt
/// (a node that is down costs one), and an operator's request waits for the signing.
pub(crate) const MAX_SIGNING_TIMEOUT_SECS: u64 = 60;

fn default_signing_timeout() -> Spanned<u64> {
    Spanned::new(0..0, 5)
}
