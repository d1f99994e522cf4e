//! What can go wrong with PostgreSQL.

/// A PostgreSQL store could not do what was asked; nothing half-done is left behind (every
/// change is one transaction).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The database URL does not parse.
    #[error("the database URL is not valid; write it as postgres://user@host:port/database")]
    Url {
        /// Why.
        #[source]
        source: tokio_postgres::Error,
    },
    /// No connection could be had in time: the database is away, or every connection is busy.
    #[error("no connection to PostgreSQL in time; check that the database is up and reachable")]
    Unavailable {
        /// Why.
        #[source]
        source: deadpool_postgres::PoolError,
    },
    /// A statement failed.
    #[error("a PostgreSQL statement failed")]
    Query(#[from] tokio_postgres::Error),
    /// A migration failed; the schema stays at the version before it.
    #[error("the database schema could not be brought to version {version}")]
    Migrate {
        /// The migration that failed.
        version: i32,
        /// Why.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The database was written by a newer version of agent-orchestrator.
    #[error(
        "the database schema is at version {found}, newer than this build's {known}; upgrade agent-orchestrator"
    )]
    TooNew {
        /// The version found.
        found: i32,
        /// The newest this build knows.
        known: i32,
    },
    /// A value does not fit the column it goes to, or a stored value is not what it must be.
    #[error("the value of `{field}` does not fit: {value}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value, as text.
        value: String,
    },
    /// A stored record cannot be decoded.
    #[error("a stored {what} cannot be decoded")]
    Decode {
        /// What was being read.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A compare-and-swap write found the row changed since it was read; nothing was written.
    #[error("`{what}` changed in the database since it was read; nothing was written")]
    Conflict {
        /// What changed.
        what: String,
    },
    /// The store's own thread could not start.
    #[error("cannot start the PostgreSQL store's thread")]
    Thread {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The store's thread has stopped.
    #[error("the PostgreSQL store has stopped")]
    WorkerStopped,
    /// An audit entry could not be made for a row.
    #[error("an audit entry could not be made")]
    Entry(#[source] Box<crate::StoreError>),
    /// A checkpoint does not match this database's audit log.
    #[error("the checkpoint does not match this database's audit log")]
    Checkpoint(#[source] ao_audit::CheckpointMismatch),
    /// The connection was lost while a batch of writes was committing: it may or may not have
    /// committed. A hold that was not settled is charged at its estimate after its lease.
    #[error(
        "the connection to PostgreSQL was lost while writing; the write may not have happened ({reason})"
    )]
    Lost {
        /// What the driver said.
        reason: String,
    },
    /// A batch of writes this one was committed with failed; nothing in it was written (unless
    /// the error says the connection was lost).
    #[error(transparent)]
    Batch(std::sync::Arc<PgError>),
    /// The pool could not be set up.
    #[error("cannot set up the connection pool: {reason}")]
    Setup {
        /// Why.
        reason: String,
    },
}

impl From<crate::StoreError> for PgError {
    fn from(error: crate::StoreError) -> Self {
        PgError::Entry(Box::new(error))
    }
}

impl PgError {
    pub(crate) fn pool(source: deadpool_postgres::PoolError) -> Self {
        match source {
            deadpool_postgres::PoolError::Backend(e) => PgError::Query(e),
            other => PgError::Unavailable { source: other },
        }
    }

    /// Whether the database could not be reached (as opposed to refusing a statement).
    pub fn is_unavailable(&self) -> bool {
        match self {
            PgError::Unavailable { .. } | PgError::WorkerStopped | PgError::Lost { .. } => true,
            PgError::Query(e) => e.is_closed() || e.as_db_error().is_none(),
            PgError::Batch(e) => e.is_unavailable(),
            _ => false,
        }
    }
}

/// `value` as a PostgreSQL `bigint`.
pub(crate) fn int(field: &'static str, value: u64) -> Result<i64, PgError> {
    i64::try_from(value).map_err(|_| PgError::OutOfRange {
        field,
        value: value.to_string(),
    })
}

/// A stored `bigint` as an amount.
pub(crate) fn uint(field: &'static str, value: i64) -> Result<u64, PgError> {
    u64::try_from(value).map_err(|_| PgError::OutOfRange {
        field,
        value: value.to_string(),
    })
}
