use std::path::PathBuf;

use agent_orchestrator::approvals::{ApprovalError, ApprovalStoreError};
use agent_orchestrator::audit::AuditError;
use agent_orchestrator::store::StoreError;
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
    #[error("cannot read `{}`: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` holds no valid secret key (expected an nsec or 64 hex characters)", path.display())]
    BadKeyFile { path: PathBuf },
    #[error("no approval request `{0}` in the database")]
    UnknownRequest(String),
    #[error("the database `{}` does not exist; give the path of an existing file with --db", .0.display())]
    NoDatabase(PathBuf),
}
