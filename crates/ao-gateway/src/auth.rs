//! Bearer keys: an agent's key is stored as its SHA-256 only; the hash decides the agent.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::http::HeaderMap;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The SHA-256 of `key`, as 64 lowercase hex characters.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A fresh API key: `ao-` and 32 random bytes in hex, with its public id (the first 8 hex
/// characters of its hash).
pub fn new_api_key() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let key = format!("ao-{}", hex::encode(bytes));
    let id = hash_key(&key)[..8].to_owned();
    (key, id)
}

/// The live keys, by hash: which agent each authenticates.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    by_hash: Arc<RwLock<HashMap<String, String>>>,
}

impl KeyRing {
    /// An empty ring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets the key with SHA-256 `sha256` in as `agent`.
    pub fn insert(&self, sha256: &str, agent: &str) {
        if let Ok(mut keys) = self.by_hash.write() {
            keys.insert(sha256.to_ascii_lowercase(), agent.to_owned());
        }
    }

    /// Stops letting the key with SHA-256 `sha256` in.
    pub fn remove(&self, sha256: &str) {
        if let Ok(mut keys) = self.by_hash.write() {
            keys.remove(&sha256.to_ascii_lowercase());
        }
    }

    /// Replaces every key at once.
    pub fn replace_all(&self, keys: impl IntoIterator<Item = (String, String)>) {
        if let Ok(mut by_hash) = self.by_hash.write() {
            *by_hash = keys
                .into_iter()
                .map(|(h, a)| (h.to_ascii_lowercase(), a))
                .collect();
        }
    }

    /// The agent a bearer key authenticates, if any. A poisoned ring lets nobody in.
    pub fn agent_for(&self, key: &str) -> Option<String> {
        let hash = hash_key(key);
        self.by_hash.read().ok()?.get(&hash).cloned()
    }

    /// The bearer token of a request, if it has one.
    pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
        headers
            .get("authorization")?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|k| !k.is_empty())
    }
}

impl KeyRing {
    /// The keys of `config` (each agent's `api_key_sha256`) and the live keys in `store`.
    pub fn load(
        config: &ao_orchestrator::Config,
        store: &ao_store::SqliteStore,
    ) -> Result<Self, ao_store::StoreError> {
        let ring = Self::new();
        ring.reload(config, store)?;
        Ok(ring)
    }

    /// Reads the keys again (after a revocation made elsewhere, say by `ao keys revoke`).
    pub fn reload(
        &self,
        config: &ao_orchestrator::Config,
        store: &ao_store::SqliteStore,
    ) -> Result<(), ao_store::StoreError> {
        let mut keys: Vec<(String, String)> = config
            .agents
            .iter()
            .filter_map(|(name, agent)| {
                agent
                    .api_key_sha256
                    .as_ref()
                    .map(|h| (h.get_ref().clone(), name.clone()))
            })
            .collect();
        keys.extend(
            store
                .api_keys()?
                .into_iter()
                .filter(|k| k.revoked_at.is_none())
                .map(|k| (k.sha256, k.agent)),
        );
        self.replace_all(keys);
        Ok(())
    }
}
