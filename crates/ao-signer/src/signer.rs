//! Signing the agent's events, wherever its shares are: the [`EventSigner`] trait, with the
//! shares in this process ([`LocalSigner`]) or the signer nodes over relays ([`Coordinator`]),
//! and the `[signing]` configuration that chooses the nodes.

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
        let group_file = GroupFile::from_json(&read(&self.group)?)?;
        let group = group_file.to_group()?;
        let nodes = group_file
            .transport_keys()?
            .ok_or(SignerError::NoTransportKeys)?;
        let key = zeroize::Zeroizing::new(read(&self.key)?);
        let keys = Keys::parse(key.trim()).map_err(|_| SignerError::Config {
            reason: format!(
                "`{}` holds no secret key (an nsec or 64 hex characters)",
                self.key.display()
            ),
        })?;
        let timeout = Duration::from_secs(self.timeout_secs);
        let relays = Relays::connect(keys, &self.relays, timeout).await?;
        Coordinator::start(group, nodes, relays, CoordinatorConfig { timeout }, None).await
    }
}
