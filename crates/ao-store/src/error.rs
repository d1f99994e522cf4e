use std::path::PathBuf;
use std::sync::Arc;

/// The database could not do what was asked.
///
/// Messages state what failed; the cause (what SQLite, serde or the system said) is the
/// [`source`](std::error::Error::source), so print the chain (`ao_types::Report`) to see it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file could not be opened or set up.
    #[error(
        "cannot open the database `{}`; give the path of a SQLite file you may read and write (it is created if missing)",
        path.display()
    )]
    Open {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The database file could not be created.
    #[error(
        "cannot create the database `{}`; give a path in a directory you may write to",
        path.display()
    )]
    Create {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The file is a SQLite database of some other application.
    #[error(
        "`{}` is not an agent-orchestrator database (application id {found:#x}); point to another file",
        path.display()
    )]
    ForeignDatabase {
        /// The file.
        path: PathBuf,
        /// The application id found in the file.
        found: i32,
    },
    /// The file was written by a newer version with a schema this one does not know.
    #[error(
        "the database `{}` has schema version {found}, newer than the {supported} this build knows; upgrade agent-orchestrator",
        path.display()
    )]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A statement failed.
    #[error("a database statement failed")]
    Sqlite(#[from] rusqlite::Error),
    /// A write transaction could not begin or commit; none of its writes happened.
    #[error("the database could not commit; none of the writes of the transaction happened")]
    Commit(#[source] Arc<rusqlite::Error>),
    /// A write transaction was rolled back by a failure in its batch (a full disk, an I/O error);
    /// none of its writes happened.
    #[error(
        "the write transaction was rolled back by a failure in its batch; nothing in it was written"
    )]
    RolledBack,
    /// A compare-and-swap write found the row changed since it was read; nothing was written.
    #[error("`{what}` changed in the database since it was read; nothing was written")]
    Conflict {
        /// What changed.
        what: String,
    },
    /// A write panicked; its changes were rolled back and the other writes of its batch were not
    /// affected.
    #[error("a write panicked and was rolled back; this is a bug, please report it")]
    WritePanicked,
    /// A value is too large for a SQLite integer (`i64`), so it cannot be stored.
    #[error("`{field}` is {value}, above the largest value the database can hold (2^63-1)")]
    TooLarge {
        /// What the value is.
        field: &'static str,
        /// The value.
        value: u64,
    },
    /// A column that holds a count or a time holds a negative number: the file was altered or
    /// written by another program.
    #[error(
        "the database holds a negative `{column}` ({value}); the file was altered or written by another program"
    )]
    Negative {
        /// The table and column.
        column: &'static str,
        /// The value found.
        value: i64,
    },
    /// A stored JSON record cannot be decoded: the file was altered or written by another
    /// version.
    #[error(
        "a stored {what} cannot be decoded; the file was altered or written by another version"
    )]
    Decode {
        /// What the record is.
        what: &'static str,
        /// What the decoder said.
        #[source]
        source: serde_json::Error,
    },
    /// A record could not be encoded as JSON.
    #[error("a {what} cannot be encoded as JSON; this is a bug, please report it")]
    Encode {
        /// What the record is.
        what: &'static str,
        /// What the encoder said.
        #[source]
        source: serde_json::Error,
    },
    /// A checkpoint does not match this database's audit log.
    #[error("the checkpoint does not match this database's audit log")]
    Checkpoint(#[source] ao_audit::CheckpointMismatch),
    /// The writer thread could not be started.
    #[error(
        "cannot start the database writer thread; the system may be short of threads or memory"
    )]
    SpawnWriter(#[source] std::io::Error),
    /// The writer thread is gone (it panicked or the store is shutting down).
    #[error("the database writer has stopped; reopen the store")]
    WriterStopped,
    /// The PostgreSQL store could not do what was asked.
    #[error(transparent)]
    Postgres(#[from] crate::PgError),
    /// A lock was poisoned by a panic in another thread.
    #[error(
        "the database connection is unavailable after a panic in another thread; reopen the store"
    )]
    Poisoned,
}
