//! Signing the agent's own events through its signer nodes, as the `[signing]` section says:
//! its NIP-SA profile (kind 39200) and checkpoints of the audit log (kind 39230). The runtime
//! holds no share: a [`RemoteSigner`](ao_signer::RemoteSigner) asks the nodes, and every event
//! that comes back is verified (id, BIP-340 signature, author, and what it says) before anything
//! uses it.

use std::sync::Arc;

use ao_audit::{
    AGENT_CHECKPOINT_KIND, ChainHead, Checkpoint, CheckpointError, parse_checkpoint,
    unsigned_checkpoint,
};
use ao_identity::{AgentIdentity, parse_public_key};
use ao_signer::{EventSigner, SignerError};
use ao_threshold::{GroupPublic, ThresholdError, agent_profile, parse_agent_profile};
use ao_types::{ClockError, SharedClock};
use nostr::{Event, PublicKey, UnsignedEvent};

/// Signs the events of one agent, the one whose key is the group key, through an
/// [`EventSigner`] (the signer nodes, when built from a configuration).
pub struct AgentSigning {
    signer: Arc<dyn EventSigner>,
    group: GroupPublic,
    identity: AgentIdentity,
    clock: SharedClock,
}

impl std::fmt::Debug for AgentSigning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentSigning")
            .field("agent", &self.identity.name)
            .field("group_pubkey", &self.group.group_pubkey())
            .finish_non_exhaustive()
    }
}

/// Why the runtime could not sign one of the agent's events. Nothing unverified is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// The signer nodes did not sign (too few answered, they refused, or the relays are down).
    #[error("the signer nodes did not sign the {what}")]
    Nodes {
        /// What was to be signed.
        what: &'static str,
        /// Why.
        #[source]
        source: SignerError,
    },
    /// The event that came back does not verify, or is not by the agent's key: it is not used.
    #[error("the {what} the signer nodes returned does not verify; it was not used")]
    Invalid {
        /// What was to be signed.
        what: &'static str,
        /// What the check found.
        #[source]
        source: Unverified,
    },
    /// The agent's key is not the key the signer nodes sign for.
    #[error(
        "agent `{agent}` has key `{agent_key}`, but the signer nodes sign for {group_key}; set the agent's `pubkey` to the group key"
    )]
    NotTheGroupKey {
        /// The agent.
        agent: String,
        /// Its configured key.
        agent_key: String,
        /// The group key.
        group_key: String,
    },
    /// The agent's profile could not be made.
    #[error("cannot make the agent's profile")]
    Profile(#[source] ThresholdError),
    /// The checkpoint could not be made (an empty log has nothing to anchor).
    #[error("cannot make the checkpoint")]
    Checkpoint(#[source] CheckpointError),
    /// The time could not be read, so nothing can be dated.
    #[error(transparent)]
    Clock(#[from] ClockError),
}

/// What is wrong with an event the signer nodes returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Unverified {
    /// Its id or signature does not verify.
    #[error("its id or signature is not valid")]
    Signature(#[source] nostr::event::Error),
    /// It is signed under another key than the agent's.
    #[error("it is signed by {found}, not by the agent's key {expected}")]
    Author {
        /// The key it is signed under.
        found: String,
        /// The agent's key.
        expected: String,
    },
    /// It does not read back as the agent's profile.
    #[error("it does not read back as the agent's profile")]
    Profile(#[source] ThresholdError),
    /// It does not read back as a checkpoint.
    #[error("it does not read back as a checkpoint")]
    Checkpoint(#[source] CheckpointError),
    /// It is a checkpoint of another head than the one asked for.
    #[error("it signs entry {found}, not the head asked for, entry {asked}")]
    OtherHead {
        /// The entry it signs.
        found: u64,
        /// The entry asked for.
        asked: u64,
    },
}

impl AgentSigning {
    /// Signs the events of the agent `identity` (whose key must be `group`'s) with `signer`,
    /// dating them by `clock`.
    pub fn new(
        signer: Arc<dyn EventSigner>,
        group: GroupPublic,
        identity: AgentIdentity,
        clock: SharedClock,
    ) -> Result<Self, SigningError> {
        let key = parse_public_key(&identity.agent_pubkey).ok();
        if key != Some(group.public_key()) || signer.public_key() != group.public_key() {
            return Err(SigningError::NotTheGroupKey {
                agent: identity.name.clone(),
                agent_key: identity.agent_pubkey.clone(),
                group_key: signer.public_key().to_hex(),
            });
        }
        let identity = identity.with_threshold(group.threshold_config());
        Ok(Self {
            signer,
            group,
            identity,
            clock,
        })
    }

    /// The agent whose events are signed.
    pub fn agent(&self) -> &str {
        &self.identity.name
    }

    /// The key every event is signed under: the group key.
    pub fn public_key(&self) -> PublicKey {
        self.group.public_key()
    }

    /// Signs `unsigned` through the signer, and verifies what comes back: nostr's own check of
    /// its id and signature, and its author. `what` names the event in errors.
    pub async fn sign(
        &self,
        unsigned: UnsignedEvent,
        what: &'static str,
    ) -> Result<Event, SigningError> {
        let event = self
            .signer
            .sign_event(unsigned)
            .await
            .map_err(|source| SigningError::Nodes { what, source })?;
        let invalid = |source| SigningError::Invalid { what, source };
        event
            .verify()
            .map_err(|e| invalid(Unverified::Signature(e)))?;
        if event.pubkey != self.public_key() {
            return Err(invalid(Unverified::Author {
                found: event.pubkey.to_hex(),
                expected: self.group.group_pubkey(),
            }));
        }
        Ok(event)
    }

    /// The agent's NIP-SA profile (kind 39200), dated now, signed and verified: it reads back as
    /// the agent's identity.
    pub async fn profile(&self) -> Result<Event, SigningError> {
        const WHAT: &str = "agent's profile";
        let now = self.clock.now()?;
        let unsigned =
            agent_profile(&self.identity, &self.group, now).map_err(SigningError::Profile)?;
        let event = self.sign(unsigned, WHAT).await?;
        parse_agent_profile(&event).map_err(|e| SigningError::Invalid {
            what: WHAT,
            source: Unverified::Profile(e),
        })?;
        Ok(event)
    }

    /// A checkpoint of the audit log's `head` (kind 39230, the agent's own), in a database whose
    /// application id is `application_id`, labelled `label`, dated now, signed and verified: it
    /// reads back as a checkpoint of that head.
    pub async fn checkpoint(
        &self,
        head: &ChainHead,
        application_id: u32,
        label: &str,
    ) -> Result<Checkpoint, SigningError> {
        const WHAT: &str = "audit checkpoint";
        let now = self.clock.now()?;
        let unsigned = unsigned_checkpoint(
            self.public_key(),
            AGENT_CHECKPOINT_KIND,
            head,
            application_id,
            label,
            now,
        )
        .map_err(SigningError::Checkpoint)?;
        let event = self.sign(unsigned, WHAT).await?;
        let checkpoint = parse_checkpoint(&event).map_err(|e| SigningError::Invalid {
            what: WHAT,
            source: Unverified::Checkpoint(e),
        })?;
        if checkpoint.head != *head {
            return Err(SigningError::Invalid {
                what: WHAT,
                source: Unverified::OtherHead {
                    found: checkpoint.head.seq,
                    asked: head.seq,
                },
            });
        }
        Ok(checkpoint)
    }
}
