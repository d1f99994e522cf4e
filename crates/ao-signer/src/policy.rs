//! What a node agrees to sign, how often, and the log of what it signed.

use std::collections::{BTreeSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::SignerError;

/// The kinds an agent signs as itself under NIP-SA: its profile (39200), state (39201), schedule
/// (39202), public goals (39203), tick request and result (39210, 39211), and trajectory session
/// and event (39230, 39231). Guardian approvals (39213) are signed by operators, never by the
/// agent, and are not among them.
pub const NIP_SA_KINDS: [u16; 8] = [39200, 39201, 39202, 39203, 39210, 39211, 39230, 39231];

/// What one node agrees to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePolicy {
    /// The event kinds it signs.
    pub kinds: BTreeSet<u16>,
    /// Whether it signs bare 32-byte messages, whose meaning it cannot see.
    pub raw_messages: bool,
    /// The most signing requests it agrees to in any 60 seconds.
    pub per_minute: u32,
}

impl Default for NodePolicy {
    /// The agent's NIP-SA kinds, no raw messages, 60 requests a minute.
    fn default() -> Self {
        Self {
            kinds: NIP_SA_KINDS.into_iter().collect(),
            raw_messages: false,
            per_minute: 60,
        }
    }
}

/// The times of the requests a node agreed to in the last minute.
#[derive(Debug, Default)]
pub(crate) struct RateWindow {
    times: VecDeque<u64>,
}

impl RateWindow {
    /// Counts a request at `now` (Unix milliseconds) if fewer than `per_minute` were counted in
    /// the 60 seconds before; whether it was counted.
    pub(crate) fn admit(&mut self, now: u64, per_minute: u32) -> bool {
        while self
            .times
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= 60_000)
        {
            self.times.pop_front();
        }
        if self.times.len() >= usize::try_from(per_minute).unwrap_or(usize::MAX) {
            return false;
        }
        self.times.push_back(now);
        true
    }
}

/// One line of the contribution log: a partial signature this node gave.
#[derive(Debug, Clone, Serialize)]
pub struct Contribution {
    /// When, in Unix milliseconds.
    pub at_ms: u64,
    /// The signing attempt.
    pub request: String,
    /// The coordinator that asked, by transport key (hex).
    pub coordinator: String,
    /// `event` or `raw`.
    pub payload: &'static str,
    /// The event's kind, for an event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<u16>,
    /// The message signed: the event's id, or the raw message (hex).
    pub message: String,
    /// The signers of this signing, this node among them.
    pub signers: Vec<u16>,
}

/// An append-only file with one JSON line per partial signature a node gave. A node writes the
/// line before the partial leaves, so a node process that dies cannot have given a partial it did
/// not log: nothing is signed that is not logged.
#[derive(Debug)]
pub struct ContributionLog {
    path: PathBuf,
    file: std::fs::File,
}

impl ContributionLog {
    /// Opens `path` for appending, creating it (readable by its owner only) if needed.
    pub fn open(path: &Path) -> Result<Self, SignerError> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(path).map_err(|source| SignerError::Log {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            path: path.to_owned(),
            file,
        })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `entry` to the file (one `write`, no buffering).
    pub fn append(&mut self, entry: &Contribution) -> Result<(), SignerError> {
        let error = |source| SignerError::Log {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(entry).map_err(|e| error(std::io::Error::other(e)))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(error)
    }
}
