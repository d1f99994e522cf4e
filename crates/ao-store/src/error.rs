use std::path::PathBuf;

/// The database could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file could not be opened or set up.
    #[error("cannot open the database `{}`: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
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
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A write transaction could not begin or commit; none of its writes happened.
    #[error("the database could not commit: {0}")]
    Commit(#[source] std::sync::Arc<rusqlite::Error>),
    /// A value read from the database is not one this version understands.
    #[error("the database holds a value that cannot be decoded: {0}")]
    Corrupt(String),
    /// The writer thread is gone (it panicked or the store is shutting down).
    #[error("the database writer has stopped; reopen the store")]
    WriterStopped,
    /// A lock was poisoned by a panic in another thread.
    #[error(
        "the database connection is unavailable after a panic in another thread; reopen the store"
    )]
    Poisoned,
}
