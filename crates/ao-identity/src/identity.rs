use serde::{Deserialize, Serialize};

use crate::autonomy::AutonomyLevel;
use crate::key::{InvalidPublicKey, parse_public_key};
use crate::threshold::{ThresholdConfig, ThresholdConfigError};

/// A sovereign agent's identity (NIP-SA): its Nostr key, name, model, autonomy, operator and,
/// when its key is split among signers, the threshold configuration.
///
/// ```
/// use ao_identity::{AgentIdentity, AutonomyLevel};
///
/// let identity = AgentIdentity::new("agent_pubkey", "MyAgent", "codex-sonnet-4")
///     .with_autonomy(AutonomyLevel::SemiAutonomous)
///     .with_operator("operator_pubkey");
/// assert_eq!(identity.name, "MyAgent");
/// assert!(!identity.is_threshold_protected());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentIdentity {
    /// The agent's Nostr public key (64 hex characters or npub). For a threshold-protected agent it
    /// is the group public key.
    pub agent_pubkey: String,
    /// A human-readable name.
    pub name: String,
    /// How much the agent may do without approval.
    #[serde(default)]
    pub autonomy_level: AutonomyLevel,
    /// The threshold key protecting the agent's identity, if any.
    #[serde(default)]
    pub threshold_config: Option<ThresholdConfig>,
    /// The operator who approves the agent's costly actions (64 hex characters or npub).
    #[serde(default)]
    pub operator_pubkey: Option<String>,
    /// The model the agent runs, such as `codex-sonnet-4`.
    pub model: String,
}

/// What is wrong with an [`AgentIdentity`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The agent's own key does not parse.
    #[error("the agent public key is not valid")]
    InvalidAgentKey(#[source] InvalidPublicKey),
    /// The operator's key does not parse.
    #[error("the operator public key is not valid")]
    InvalidOperatorKey(#[source] InvalidPublicKey),
    /// The threshold configuration is wrong.
    #[error("the threshold configuration is not valid")]
    Threshold(#[from] ThresholdConfigError),
    /// The agent's key is not the group key of its threshold configuration, so whoever holds the
    /// agent's key could sign without the signers.
    #[error(
        "the agent public key is not the threshold group key; a threshold-protected agent's key must be its group key"
    )]
    AgentKeyNotGroupKey,
}

impl AgentIdentity {
    /// An identity with the given key, name and model, supervised, without operator or threshold
    /// key.
    pub fn new(
        agent_pubkey: impl Into<String>,
        name: impl Into<String>,
        model: impl Into<String>,
    ) -> Self {
        Self {
            agent_pubkey: agent_pubkey.into(),
            name: name.into(),
            autonomy_level: AutonomyLevel::default(),
            threshold_config: None,
            operator_pubkey: None,
            model: model.into(),
        }
    }

    /// Sets the autonomy level.
    pub fn with_autonomy(mut self, level: AutonomyLevel) -> Self {
        self.autonomy_level = level;
        self
    }

    /// Sets the operator's public key.
    pub fn with_operator(mut self, operator_pubkey: impl Into<String>) -> Self {
        self.operator_pubkey = Some(operator_pubkey.into());
        self
    }

    /// Sets the threshold configuration protecting the agent's key.
    pub fn with_threshold(mut self, config: ThresholdConfig) -> Self {
        self.threshold_config = Some(config);
        self
    }

    /// Whether the agent's identity really is protected by a threshold key: a threshold
    /// configuration is set, it passes [`ThresholdConfig::validate`] (real keys, not placeholders),
    /// and the agent's key is its group key.
    ///
    /// A configuration with placeholder strings, or one that protects some other key, does not
    /// make an agent's identity unforgeable, so this answers `false` for it.
    pub fn is_threshold_protected(&self) -> bool {
        self.threshold_config.is_some() && self.validate().is_ok()
    }

    /// Checks every key of the identity: the agent's key, the operator's if set, and the threshold
    /// configuration if set (which must protect the agent's own key).
    pub fn validate(&self) -> Result<(), IdentityError> {
        let agent = parse_public_key(&self.agent_pubkey).map_err(IdentityError::InvalidAgentKey)?;
        if let Some(operator) = &self.operator_pubkey {
            parse_public_key(operator).map_err(IdentityError::InvalidOperatorKey)?;
        }
        if let Some(config) = &self.threshold_config {
            config.validate()?;
            if config.group_public_key()? != agent {
                return Err(IdentityError::AgentKeyNotGroupKey);
            }
        }
        Ok(())
    }
}
