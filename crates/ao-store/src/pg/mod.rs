//! PostgreSQL: the store for several gateways on one database.
//!
//! [`PgStore`] keeps the ledger, write-ahead holds, approvals, the audit log and API keys in one
//! PostgreSQL database, through `tokio-postgres` with a `deadpool` connection pool, and
//! migrations versioned in the database (applied under an advisory lock, so gateways starting
//! together apply each once). It implements the same traits as [`SqliteStore`](crate::SqliteStore)
//! and passes the same conformance suites.
//!
//! The pool and its connections live on a runtime of their own, on a thread of their own: the
//! storage traits are synchronous (their callers block on a write, as they do with SQLite), and
//! async callers use [`PgStore::run`], so neither kind of caller depends on the other's runtime.

mod api_keys;
mod approvals;
mod audit;
mod budgets;
mod chain;
mod checkpoints;
mod error;
mod ledger;
mod listen;
mod payments;
mod runtime;
mod schema;
mod scratch;
mod writer;

use std::future::Future;
use std::time::Duration;

use deadpool_postgres::{Pool, PoolConfig, Timeouts};

pub use api_keys::KEYS_CHANNEL;
pub use approvals::{APPROVALS_CHANNEL, ApprovalNotice};
pub use budgets::{SharedBudgets, SharedHold, SharedSpend};
pub use error::PgError;
pub use listen::{Listener, Notice};
use runtime::Worker;
pub use scratch::{ScratchSchema, test_server_url};
use writer::{Done, Job, Writer};

/// How a [`PgStore`] connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// The most connections in the pool.
    pub max_connections: usize,
    /// How long to wait for a connection (to connect, or for one to be free) before failing:
    /// the answer to a database that is away is a quick error, never a hang.
    pub timeout: Duration,
}

impl Default for PgOptions {
    /// 16 connections, 2 s.
    fn default() -> Self {
        Self {
            max_connections: 16,
            timeout: Duration::from_secs(2),
        }
    }
}

/// One PostgreSQL database behind the durable parts of agent-orchestrator. Cheap to clone;
/// clones share the pool.
#[derive(Clone)]
pub struct PgStore {
    config: std::sync::Arc<tokio_postgres::Config>,
    pool: Pool,
    worker: Worker,
    writer: Writer,
    reserver: Writer,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/database`) and brings its schema up to date.
    /// Fails if the database cannot be reached within the options' timeout, or holds a newer
    /// schema than this build knows.
    pub fn connect(url: &str, options: PgOptions) -> Result<Self, PgError> {
        let config: tokio_postgres::Config =
            url.parse().map_err(|source| PgError::Url { source })?;
        let worker = Worker::start()?;
        let manager = deadpool_postgres::Manager::new(config.clone(), tokio_postgres::NoTls);
        let pool = Pool::builder(manager)
            .config(PoolConfig {
                max_size: options.max_connections.max(1),
                timeouts: Timeouts {
                    wait: Some(options.timeout),
                    create: Some(options.timeout),
                    recycle: Some(options.timeout),
                },
                ..PoolConfig::default()
            })
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| PgError::Setup {
                reason: e.to_string(),
            })?;
        let writer = Writer::start(worker.handle(), pool.clone());
        let reserver = Writer::start(worker.handle(), pool.clone());
        let store = Self {
            config: std::sync::Arc::new(config),
            pool,
            worker,
            writer,
            reserver,
        };
        let pool = store.pool.clone();
        store.block_on(async move { schema::migrate(&pool).await })?;
        Ok(store)
    }

    /// Runs `work` with a pooled connection on the store's runtime and waits for it, from
    /// async code on any runtime.
    pub async fn run<T, F, Fut>(&self, work: F) -> Result<T, PgError>
    where
        T: Send + 'static,
        F: FnOnce(deadpool_postgres::Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, PgError>> + Send + 'static,
    {
        let pool = self.pool.clone();
        self.worker
            .spawn(async move {
                let client = pool.get().await.map_err(PgError::pool)?;
                work(client).await
            })
            .await
    }

    /// [`run`](PgStore::run) for synchronous callers: blocks the calling thread until done.
    pub fn call<T, F, Fut>(&self, work: F) -> Result<T, PgError>
    where
        T: Send + 'static,
        F: FnOnce(deadpool_postgres::Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, PgError>> + Send + 'static,
    {
        let pool = self.pool.clone();
        self.block_on(async move {
            let client = pool.get().await.map_err(PgError::pool)?;
            work(client).await
        })
    }

    fn block_on<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, PgError>> + Send + 'static,
    ) -> Result<T, PgError> {
        self.worker.block_on(work)
    }

    /// Queues `job` for the writer (committed with others in one transaction) and waits for it.
    pub(crate) async fn submit(&self, job: Job) -> Result<Done, PgError> {
        self.writer.submit(job).await
    }

    /// Queues a reservation (made with the others that arrive meanwhile, in one transaction,
    /// apart from the writes of the audit chain) and waits for it.
    pub(crate) async fn reserve(&self, job: Job) -> Result<Done, PgError> {
        self.reserver.submit(job).await
    }

    /// [`submit`](PgStore::submit) for synchronous callers.
    pub(crate) fn submit_blocking(&self, job: Job) -> Result<Done, PgError> {
        let writer = self.writer.clone();
        self.block_on(async move { writer.submit(job).await })
    }

    /// Checks that the database answers now.
    pub fn check(&self) -> Result<(), PgError> {
        self.call(|client| async move {
            client.simple_query("SELECT 1").await?;
            Ok(())
        })
    }
}
