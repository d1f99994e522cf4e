use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::checkpoint::ChainHead;

/// The `prev_hash` of the first entry: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Something to append to the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When it happened, in Unix seconds.
    pub timestamp: u64,
    /// What happened, as a dotted name such as `approval.requested` or `cost.settled`.
    pub kind: String,
    /// The agent it concerns.
    pub agent: String,
    /// The details, as JSON text: exactly the bytes that are stored and hashed.
    pub detail: String,
}

impl AuditEvent {
    /// An event of `kind` about `agent` at `timestamp` with `detail`.
    pub fn new(
        timestamp: u64,
        kind: impl Into<String>,
        agent: impl Into<String>,
        detail: serde_json::Value,
    ) -> Self {
        Self {
            timestamp,
            kind: kind.into(),
            agent: agent.into(),
            detail: detail.to_string(),
        }
    }

    /// An event whose detail is `detail` serialized to JSON: cheaper than building a
    /// [`serde_json::Value`] first, for events written on every call.
    pub fn from_serialize<T: Serialize + ?Sized>(
        timestamp: u64,
        kind: impl Into<String>,
        agent: impl Into<String>,
        detail: &T,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self {
            timestamp,
            kind: kind.into(),
            agent: agent.into(),
            detail: serde_json::to_string(detail)?,
        })
    }
}

/// One entry of the audit log, linked to the one before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log, from 1.
    pub seq: u64,
    /// When it happened, in Unix seconds.
    pub timestamp: u64,
    /// What happened.
    pub kind: String,
    /// The agent it concerns.
    pub agent: String,
    /// The details, as JSON text (exactly the bytes that were hashed).
    pub detail: String,
    /// The hash of the previous entry, or [`GENESIS_HASH`] for the first.
    pub prev_hash: String,
    /// This entry's hash, lowercase hex SHA-256.
    pub hash: String,
}

impl AuditEntry {
    /// The entry that follows `prev` (or starts the log when `prev` is `None`) for `event`.
    pub fn next(prev: Option<&AuditEntry>, event: AuditEvent) -> AuditEntry {
        Self::following(prev.map(ChainHead::of).as_ref(), event)
    }

    /// The entry that follows the chain whose head is `prev` (or starts the log when `prev` is
    /// `None`) for `event`: [`next`](AuditEntry::next) for a caller that holds only the last
    /// entry's sequence number and hash.
    pub fn following(prev: Option<&ChainHead>, event: AuditEvent) -> AuditEntry {
        let (seq, prev_hash) = match prev {
            Some(p) => (p.seq.saturating_add(1), p.hash.clone()),
            None => (1, GENESIS_HASH.to_owned()),
        };
        let detail = event.detail;
        let hash = Self::compute_hash(
            seq,
            event.timestamp,
            &event.kind,
            &event.agent,
            &detail,
            &prev_hash,
        );
        AuditEntry {
            seq,
            timestamp: event.timestamp,
            kind: event.kind,
            agent: event.agent,
            detail,
            prev_hash,
            hash,
        }
    }

    /// The hash an entry with these fields must carry. Every variable-length field is prefixed
    /// with its length, so no two different entries hash the same bytes.
    pub fn compute_hash(
        seq: u64,
        timestamp: u64,
        kind: &str,
        agent: &str,
        detail: &str,
        prev_hash: &str,
    ) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"ao-audit-v1");
        hasher.update(seq.to_be_bytes());
        hasher.update(timestamp.to_be_bytes());
        for field in [kind, agent, detail, prev_hash] {
            hasher.update((field.len() as u64).to_be_bytes());
            hasher.update(field.as_bytes());
        }
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let digest = hasher.finalize();
        let mut hex = String::with_capacity(64);
        for byte in digest {
            hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
            hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
        hex
    }

    /// Whether the entry's hash matches its fields.
    pub fn hash_is_valid(&self) -> bool {
        self.hash
            == Self::compute_hash(
                self.seq,
                self.timestamp,
                &self.kind,
                &self.agent,
                &self.detail,
                &self.prev_hash,
            )
    }

    /// The detail, parsed back into JSON.
    pub fn detail_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(&self.detail)
    }
}

/// Where an audit chain stops holding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit log broken at entry {seq}: {reason}")]
pub struct BrokenLink {
    /// The sequence number of the first entry that does not hold.
    pub seq: u64,
    /// What is wrong with it.
    pub reason: String,
}

/// Checks a whole chain, from its first entry: sequence numbers count up from 1, each entry's
/// `prev_hash` is the hash of the one before, and each hash matches its entry. Returns the number
/// of entries, or the first broken link.
pub fn verify_chain<'a>(
    entries: impl IntoIterator<Item = &'a AuditEntry>,
) -> Result<u64, BrokenLink> {
    let mut expected_seq = 1u64;
    let mut prev_hash = GENESIS_HASH.to_owned();
    for entry in entries {
        if entry.seq != expected_seq {
            return Err(BrokenLink {
                seq: entry.seq,
                reason: format!(
                    "expected entry {expected_seq} here; entries were removed or reordered"
                ),
            });
        }
        if entry.prev_hash != prev_hash {
            return Err(BrokenLink {
                seq: entry.seq,
                reason: "its previous-hash does not match the entry before it".into(),
            });
        }
        if !entry.hash_is_valid() {
            return Err(BrokenLink {
                seq: entry.seq,
                reason: "its contents do not match its hash; it was edited".into(),
            });
        }
        prev_hash.clone_from(&entry.hash);
        expected_seq += 1;
    }
    Ok(expected_seq - 1)
}
