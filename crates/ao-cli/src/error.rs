use std::path::PathBuf;

use agent_orchestrator::approvals::{ApprovalError, ApprovalStoreError};
use agent_orchestrator::audit::AuditError;
use agent_orchestrator::store::StoreError;
use agent_orchestrator::threshold::ThresholdError;
use agent_orchestrator::types::ClockError;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    ApprovalStore(#[from] ApprovalStoreError),
    #[error(transparent)]
    Approval(#[from] ApprovalError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Clock(#[from] ClockError),
    #[error(transparent)]
    Threshold(#[from] ThresholdError),
    #[error("cannot write `{}`: {source}", path.display())]
    WriteFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` already exists; keygen never overwrites key material, choose another --out", .0.display())]
    Exists(PathBuf),
    #[error("no passphrase: set AO_PASSPHRASE or run in a terminal to be asked")]
    NoPassphrase,
    #[error("the passphrases do not match")]
    PassphraseMismatch,
    #[error("cannot read the passphrase: {source}")]
    Prompt {
        #[source]
        source: std::io::Error,
    },
    #[error("{what} must be {expected}: {reason}")]
    BadInput {
        what: &'static str,
        expected: &'static str,
        reason: String,
    },
    #[error("`{}` is not an unsigned Nostr event: {reason}", path.display())]
    BadEvent { path: PathBuf, reason: String },
    #[error("cannot read `{}`: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` holds no valid secret key (expected an nsec or 64 hex characters)", path.display())]
    BadKeyFile { path: PathBuf },
    #[error(transparent)]
    Config(#[from] agent_orchestrator::orchestrator::ConfigError),
    #[error("{0}")]
    Demo(String),
    #[error("no approval request `{0}` in the database")]
    UnknownRequest(String),
    #[error("the database `{}` does not exist; give the path of an existing file with --db", .0.display())]
    NoDatabase(PathBuf),
}
