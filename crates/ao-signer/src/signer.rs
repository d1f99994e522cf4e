//! Signing the agent's events, wherever its shares are: the [`EventSigner`] trait, with the
//! shares in this process ([`LocalSigner`]) or the signer nodes over relays ([`Coordinator`], or
//! [`RemoteSigner`], which connects when first asked), and the `[signing]` configuration that
//! chooses the nodes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ao_threshold::{GroupFile, GroupPublic, SignerShare, sign_event};
use nostr::{Event, Keys, PublicKey, UnsignedEvent};
use serde::Deserialize;

use crate::coordinator::{Coordinator, CoordinatorConfig};
use crate::error::SignerError;
use crate::transport::Relays;

/// Signs unsigned events with the agent's key. Its implementations: [`LocalSigner`] and
/// [`Coordinator`].
#[async_trait::async_trait]
pub trait EventSigner: Send + Sync {
    /// The key events are signed under: the group key.
    fn public_key(&self) -> PublicKey;

    /// Signs `unsigned`, whose author must be [`public_key`](EventSigner::public_key); the event
    /// returned passes nostr's own verification.
    async fn sign_event(&self, unsigned: UnsignedEvent) -> Result<Event, SignerError>;
}

/// Signs with at least `threshold` shares held in this process (`ao sign --share`, `ao demo`).
#[derive(Debug)]
pub struct LocalSigner {
    group: GroupPublic,
    shares: Vec<SignerShare>,
}

impl LocalSigner {
    /// A signer with `shares` of `group`.
    pub fn new(group: GroupPublic, shares: Vec<SignerShare>) -> Self {
        Self { group, shares }
    }
}

#[async_trait::async_trait]
impl EventSigner for LocalSigner {
    fn public_key(&self) -> PublicKey {
        self.group.public_key()
    }

    async fn sign_event(&self, unsigned: UnsignedEvent) -> Result<Event, SignerError> {
        let shares: Vec<&SignerShare> = self.shares.iter().collect();
        Ok(sign_event(&self.group, &shares, unsigned)?)
    }
}

#[async_trait::async_trait]
impl EventSigner for Coordinator {
    fn public_key(&self) -> PublicKey {
        Coordinator::public_key(self)
    }

    async fn sign_event(&self, unsigned: UnsignedEvent) -> Result<Event, SignerError> {
        Coordinator::sign_event(self, unsigned).await
    }
}

/// Where the signer nodes are: the `[signing]` section of a configuration file.
///
/// ```toml
/// [signing]
/// group = "group.json"            # the group file, with its nodes' transport keys
/// relays = ["ws://127.0.0.1:7777"]
/// key = "coordinator.key"         # this coordinator's transport key (nsec), trusted by the nodes
/// timeout_secs = 5                # per round
/// ```
///
/// Relative paths are taken from the configuration file's directory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// The group file.
    pub group: PathBuf,
    /// The relays the nodes listen on.
    pub relays: Vec<String>,
    /// The coordinator's transport key, a file holding an nsec or 64 hex characters.
    pub key: PathBuf,
    /// How long each round waits for the nodes, in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_timeout_secs() -> u64 {
    5
}

fn read(path: &Path) -> Result<String, SignerError> {
    std::fs::read_to_string(path).map_err(|source| SignerError::ReadFile {
        path: path.to_owned(),
        source,
    })
}

impl SigningConfig {
    /// The `[signing]` section of the TOML configuration `text`, if it has one, with its paths
    /// taken from `base` (the configuration file's directory).
    pub fn from_toml(text: &str, base: &Path) -> Result<Option<Self>, SignerError> {
        let bad = |e: toml::de::Error| SignerError::Config {
            reason: e.to_string(),
        };
        let file: toml::Table = toml::from_str(text).map_err(bad)?;
        let Some(section) = file.get("signing") else {
            return Ok(None);
        };
        let mut config: SigningConfig = section.clone().try_into().map_err(bad)?;
        config.group = base.join(&config.group);
        config.key = base.join(&config.key);
        Ok(Some(config))
    }

    /// Reads the group file and the key, connects to the relays, and starts a coordinator.
    pub async fn connect(&self) -> Result<Coordinator, SignerError> {
        self.open()?.connect().await
    }

    /// Reads the group file (with its nodes' transport keys) and the coordinator's key, without
    /// connecting: a [`RemoteSigner`] that connects when it is first asked to sign. The errors
    /// name the file, never what a key file holds.
    pub fn open(&self) -> Result<RemoteSigner, SignerError> {
        let group_file = GroupFile::from_json(&read(&self.group)?)?;
        let group = group_file.to_group()?;
        let nodes = group_file
            .transport_keys()?
            .ok_or(SignerError::NoTransportKeys)?;
        let key = zeroize::Zeroizing::new(read(&self.key)?);
        let keys = Keys::parse(key.trim()).map_err(|_| SignerError::Config {
            reason: format!(
                "`{}` holds no secret key (an nsec or 64 hex characters; `ao transport-key` makes one)",
                self.key.display()
            ),
        })?;
        Ok(RemoteSigner {
            group,
            nodes,
            keys,
            relays: self.relays.clone(),
            timeout: Duration::from_secs(self.timeout_secs),
            coordinator: tokio::sync::Mutex::new(None),
        })
    }
}

/// Signs through the signer nodes of a [`SigningConfig`], connecting to the relays when first
/// asked to sign, and again on the next request after a connection could not be made: a relay
/// that is down when a process starts is not an error until something must be signed.
pub struct RemoteSigner {
    group: GroupPublic,
    nodes: Vec<PublicKey>,
    keys: Keys,
    relays: Vec<String>,
    timeout: Duration,
    coordinator: tokio::sync::Mutex<Option<Coordinator>>,
}

impl std::fmt::Debug for RemoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSigner")
            .field("group_pubkey", &self.group.group_pubkey())
            .field("transport_key", &self.keys.public_key().to_hex())
            .field("relays", &self.relays)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RemoteSigner {
    /// The group whose key events are signed under.
    pub fn group(&self) -> &GroupPublic {
        &self.group
    }

    /// The relays it speaks on.
    pub fn relays(&self) -> &[String] {
        &self.relays
    }

    /// How long each round waits for the nodes.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A coordinator on the relays: the one started before, or a new one.
    pub async fn connect(&self) -> Result<Coordinator, SignerError> {
        let mut slot = self.coordinator.lock().await;
        if let Some(coordinator) = &*slot {
            return Ok(coordinator.clone());
        }
        let relays = Relays::connect(self.keys.clone(), &self.relays, self.timeout).await?;
        let config = CoordinatorConfig {
            timeout: self.timeout,
        };
        let coordinator =
            Coordinator::start(self.group.clone(), self.nodes.clone(), relays, config, None)
                .await?;
        *slot = Some(coordinator.clone());
        Ok(coordinator)
    }
}

#[async_trait::async_trait]
impl EventSigner for RemoteSigner {
    fn public_key(&self) -> PublicKey {
        self.group.public_key()
    }

    async fn sign_event(&self, unsigned: UnsignedEvent) -> Result<Event, SignerError> {
        self.connect().await?.sign_event(unsigned).await
    }
}
