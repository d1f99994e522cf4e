//! Checkpoints: the head of a log (its last sequence number and hash), signed by an operator as a
//! Nostr event, so that the log up to that entry can be checked against something the operator
//! keeps, and the database does not.
//!
//! An operator's checkpoint is a NIP-78 application-data event (kind 30078, addressable: a relay
//! keeps the newest per signer and `d` tag). The agent's own, signed with its threshold key by the
//! signer nodes, is a NIP-SA trajectory session (kind 39230, addressable too), the one kind of
//! the agent's own that records a run, and one its nodes sign by default. Their tags are the
//! same:
//!
//! - `["d", "agent-orchestrator/audit-checkpoint/<label>"]`: which log, named by the operator;
//! - `["seq", "<n>"]`: the sequence number of the entry signed, from 1;
//! - `["hash", "<64 hex>"]`: that entry's hash, which covers every entry before it;
//! - `["application_id", "0x414f5331"]`: the kind of database the log lives in (its SQLite
//!   `application_id`, in lowercase hex);
//! - `["alt", ...]`: a sentence for clients that do not know the kind (NIP-31).
//!
//! The content is empty. What a checkpoint proves and what it does not is in `docs/AUDIT.md`.

use nostr::{
    Event, EventBuilder, JsonUtil, Keys, Kind, PublicKey, Tag, TagKind, Timestamp, UnsignedEvent,
};
use serde::{Deserialize, Serialize};

use crate::entry::AuditEntry;

/// The kind of an operator's checkpoint event: NIP-78 application-specific data.
pub const CHECKPOINT_KIND: u16 = 30078;

/// The kind of a checkpoint the agent signs with its own (threshold) key: a NIP-SA trajectory
/// session, the record of a run, which signer nodes sign by default (`docs/AUDIT.md`).
pub const AGENT_CHECKPOINT_KIND: u16 = 39230;

/// The start of a checkpoint's `d` tag; the log's label follows it.
pub const CHECKPOINT_D_PREFIX: &str = "agent-orchestrator/audit-checkpoint/";

/// The head of a chain: its last entry's sequence number and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// The last entry's sequence number.
    pub seq: u64,
    /// The last entry's hash.
    pub hash: String,
}

impl ChainHead {
    /// The head of a chain whose last entry is `entry`.
    pub fn of(entry: &AuditEntry) -> Self {
        Self {
            seq: entry.seq,
            hash: entry.hash.clone(),
        }
    }
}

/// A checkpoint event that is well formed and validly signed. Who signed it is [`signer`]: the
/// caller decides whether that is the operator it expects.
///
/// [`signer`]: Checkpoint::signer
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The head it signs.
    pub head: ChainHead,
    /// The `application_id` of the database it names.
    pub application_id: u32,
    /// The log's label (its `d` tag without the prefix).
    pub label: String,
    /// Who signed it.
    pub signer: PublicKey,
    /// When it was signed, in Unix seconds.
    pub created_at: u64,
    /// The signed event.
    pub event: Event,
}

/// A Nostr event that is not a valid checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The text is not a Nostr event.
    #[error("not a Nostr event; give the signed checkpoint event as JSON")]
    NotAnEvent,
    /// The event's id or signature does not verify.
    #[error("the checkpoint's id or signature does not verify: {reason}")]
    BadSignature {
        /// What the verifier said.
        reason: String,
    },
    /// The event is of another kind.
    #[error(
        "a checkpoint is a kind {CHECKPOINT_KIND} (operator) or {AGENT_CHECKPOINT_KIND} (agent) event, not kind {found}"
    )]
    WrongKind {
        /// The kind found.
        found: u16,
    },
    /// A tag is missing, repeated or malformed.
    #[error("the checkpoint needs exactly one well-formed `{tag}` tag")]
    BadTag {
        /// The tag.
        tag: &'static str,
    },
    /// The head to sign has no entry: an empty log has nothing to anchor.
    #[error("the audit log is empty: there is nothing to checkpoint yet")]
    EmptyLog,
    /// Signing failed.
    #[error("the checkpoint could not be signed: {reason}")]
    Sign {
        /// What the signer said.
        reason: String,
    },
}

/// A checkpoint that does not match a log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointMismatch {
    /// The log is shorter than the checkpoint.
    #[error(
        "the log ends at entry {len}, before the checkpoint's entry {seq}: entries were cut from its end"
    )]
    Cut {
        /// The checkpoint's sequence number.
        seq: u64,
        /// The log's length.
        len: u64,
    },
    /// The entry at the checkpoint's sequence number has another hash.
    #[error(
        "entry {seq} has hash {found}, but the checkpoint signed {signed}: the log was rewritten at or before entry {seq}"
    )]
    Rewritten {
        /// The checkpoint's sequence number.
        seq: u64,
        /// The hash in the log.
        found: String,
        /// The hash signed.
        signed: String,
    },
    /// The checkpoint names another kind of database.
    #[error(
        "the checkpoint names a database with application id {signed:#x}, this one is {found:#x}"
    )]
    OtherApplication {
        /// The database's application id.
        found: u32,
        /// The application id signed.
        signed: u32,
    },
}

/// Signs `head` of the log labelled `label`, in a database whose application id is
/// `application_id`, with `keys`, dated `created_at` (Unix seconds): an operator's checkpoint,
/// kind [`CHECKPOINT_KIND`]. The key never leaves `keys`.
pub fn sign_checkpoint(
    keys: &Keys,
    head: &ChainHead,
    application_id: u32,
    label: &str,
    created_at: u64,
) -> Result<Event, CheckpointError> {
    checkpoint_builder(CHECKPOINT_KIND, head, application_id, label, created_at)?
        .sign_with_keys(keys)
        .map_err(|e| CheckpointError::Sign {
            reason: e.to_string(),
        })
}

/// The unsigned checkpoint of `head` by `author`, of kind `kind` ([`AGENT_CHECKPOINT_KIND`] for
/// the agent's, signed by its signer nodes; [`CHECKPOINT_KIND`] for an operator's), to be signed
/// elsewhere. [`parse_checkpoint`] reads the signed event.
pub fn unsigned_checkpoint(
    author: PublicKey,
    kind: u16,
    head: &ChainHead,
    application_id: u32,
    label: &str,
    created_at: u64,
) -> Result<UnsignedEvent, CheckpointError> {
    if !is_checkpoint_kind(kind) {
        return Err(CheckpointError::WrongKind { found: kind });
    }
    Ok(checkpoint_builder(kind, head, application_id, label, created_at)?.build(author))
}

/// Whether `kind` is one a checkpoint is made of.
fn is_checkpoint_kind(kind: u16) -> bool {
    kind == CHECKPOINT_KIND || kind == AGENT_CHECKPOINT_KIND
}

fn checkpoint_builder(
    kind: u16,
    head: &ChainHead,
    application_id: u32,
    label: &str,
    created_at: u64,
) -> Result<EventBuilder, CheckpointError> {
    if head.seq == 0 {
        return Err(CheckpointError::EmptyLog);
    }
    let custom = |name: &str, value: String| Tag::custom(TagKind::custom(name), [value]);
    Ok(EventBuilder::new(Kind::Custom(kind), "")
        .tags([
            Tag::identifier(format!("{CHECKPOINT_D_PREFIX}{label}")),
            custom("seq", head.seq.to_string()),
            custom("hash", head.hash.clone()),
            custom("application_id", format!("{application_id:#010x}")),
            custom(
                "alt",
                format!(
                    "agent-orchestrator audit log checkpoint: entry {} has hash {}",
                    head.seq, head.hash
                ),
            ),
        ])
        .custom_created_at(Timestamp::from_secs(created_at)))
}

/// Reads a checkpoint from the JSON of its event; see [`parse_checkpoint`].
pub fn parse_checkpoint_json(json: &str) -> Result<Checkpoint, CheckpointError> {
    let event = Event::from_json(json.trim()).map_err(|_| CheckpointError::NotAnEvent)?;
    parse_checkpoint(&event)
}

/// Verifies a checkpoint event's id and BIP-340 signature and reads what it says, of either kind
/// ([`CHECKPOINT_KIND`], [`AGENT_CHECKPOINT_KIND`]). It does not check who signed it: compare
/// [`Checkpoint::signer`] with the operator (or the agent) you expect.
pub fn parse_checkpoint(event: &Event) -> Result<Checkpoint, CheckpointError> {
    event.verify().map_err(|e| CheckpointError::BadSignature {
        reason: e.to_string(),
    })?;
    let kind = event.kind.as_u16();
    if !is_checkpoint_kind(kind) {
        return Err(CheckpointError::WrongKind { found: kind });
    }
    let single = |name: &'static str| -> Result<&str, CheckpointError> {
        let mut found = event
            .tags
            .iter()
            .map(|t| t.as_slice())
            .filter(|t| t.first().is_some_and(|k| k == name));
        match (found.next(), found.next()) {
            (Some([_, value, ..]), None) if !value.is_empty() => Ok(value.as_str()),
            _ => Err(CheckpointError::BadTag { tag: name }),
        }
    };
    let label = single("d")?
        .strip_prefix(CHECKPOINT_D_PREFIX)
        .ok_or(CheckpointError::BadTag { tag: "d" })?
        .to_owned();
    let seq = single("seq")?
        .parse::<u64>()
        .ok()
        .filter(|s| *s >= 1)
        .ok_or(CheckpointError::BadTag { tag: "seq" })?;
    let hash = single("hash")?;
    if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(CheckpointError::BadTag { tag: "hash" });
    }
    let application_id = single("application_id")?
        .strip_prefix("0x")
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        .ok_or(CheckpointError::BadTag {
            tag: "application_id",
        })?;
    Ok(Checkpoint {
        head: ChainHead {
            seq,
            hash: hash.to_owned(),
        },
        application_id,
        label,
        signer: event.pubkey,
        created_at: event.created_at.as_secs(),
        event: event.clone(),
    })
}

impl Checkpoint {
    /// Checks the checkpoint against a log in a database with `application_id`, whose last
    /// entry is `last_seq` (0 when empty) and whose entry at the checkpoint's sequence number has
    /// the hash `hash_at_seq` (`None` when there is no such entry).
    pub fn check(
        &self,
        application_id: u32,
        last_seq: u64,
        hash_at_seq: Option<&str>,
    ) -> Result<(), CheckpointMismatch> {
        if application_id != self.application_id {
            return Err(CheckpointMismatch::OtherApplication {
                found: application_id,
                signed: self.application_id,
            });
        }
        let seq = self.head.seq;
        match hash_at_seq {
            _ if last_seq < seq => Err(CheckpointMismatch::Cut { seq, len: last_seq }),
            None => Err(CheckpointMismatch::Cut { seq, len: last_seq }),
            Some(found) if found != self.head.hash => Err(CheckpointMismatch::Rewritten {
                seq,
                found: found.to_owned(),
                signed: self.head.hash.clone(),
            }),
            Some(_) => Ok(()),
        }
    }

    /// [`check`](Checkpoint::check) against a whole chain, from its first entry (as
    /// [`verify_chain`](crate::verify_chain) wants it).
    pub fn check_chain(
        &self,
        application_id: u32,
        chain: &[AuditEntry],
    ) -> Result<(), CheckpointMismatch> {
        let at = self
            .head
            .seq
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| chain.get(i))
            .filter(|e| e.seq == self.head.seq)
            .map(|e| e.hash.as_str());
        let last = chain.last().map_or(0, |e| e.seq);
        self.check(application_id, last, at)
    }

    /// The signed event as JSON, to keep or publish.
    pub fn to_json(&self) -> String {
        self.event.as_json()
    }
}
