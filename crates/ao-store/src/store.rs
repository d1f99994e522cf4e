use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::error::StoreError;
use crate::schema;

/// How hard a commit works to survive a crash.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Every commit is `fsync`ed before it returns (`synchronous = FULL`): a committed write
    /// survives the process being killed and the machine losing power.
    #[default]
    Full,
    /// Commits are handed to the operating system but not `fsync`ed (`synchronous = NORMAL` in
    /// WAL mode): a committed write survives the process being killed, not a power loss.
    Normal,
}

/// How a [`SqliteStore`] is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Commit durability (default [`Durability::Full`]).
    pub durability: Durability,
    /// How long a statement waits for another process's lock before failing (default 5 s).
    pub busy_timeout: Duration,
    /// The most writes committed together in one transaction (default 1024).
    pub max_batch: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(5),
            max_batch: 1024,
        }
    }
}

/// One unit of work for the writer thread: it runs inside the batch's transaction, and learns
/// afterwards whether the batch committed.
trait WriteJob: Send {
    fn run(&mut self, conn: &Connection) -> Result<(), StoreError>;
    fn finish(self: Box<Self>, outcome: Result<(), StoreError>);
    /// Whether the job needs its commit to survive only the process being killed, not a power
    /// loss: a batch of such jobs alone is committed without an `fsync`.
    fn light(&self) -> bool;
}

struct Typed<T, F> {
    work: Option<F>,
    value: Option<T>,
    reply: mpsc::SyncSender<Result<T, StoreError>>,
    light: bool,
}

impl<T, F> WriteJob for Typed<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> Result<(), StoreError> {
        let work = self.work.take().ok_or(StoreError::WriterStopped)?;
        self.value = Some(work(conn)?);
        Ok(())
    }

    fn finish(mut self: Box<Self>, outcome: Result<(), StoreError>) {
        let result = outcome.and_then(|()| self.value.take().ok_or(StoreError::WriterStopped));
        // The caller may have stopped waiting; then nobody needs the answer.
        let _ = self.reply.send(result);
    }

    fn light(&self) -> bool {
        self.light
    }
}

struct Inner {
    path: PathBuf,
    jobs: Mutex<Option<mpsc::Sender<Box<dyn WriteJob>>>>,
    reader: Mutex<Connection>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the writer loop once it has committed what it holds.
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        if let Ok(mut writer) = self.writer.lock()
            && let Some(handle) = writer.take()
        {
            let _ = handle.join();
        }
    }
}

/// One SQLite database file: the durable store of agent-orchestrator.
///
/// Clones share the same database, writer thread and reader connection. The store is closed when
/// the last clone is dropped, after every write already handed to it is committed.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it if needed) the database at `path` with the default options: WAL mode,
    /// every commit `fsync`ed.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, StoreOptions::default())
    }

    /// Opens (creating it if needed) the database at `path` with `options`.
    ///
    /// Fails when the file is not a SQLite database, belongs to another application, or was
    /// written by a newer version of this one.
    pub fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        create_owner_only(&path).map_err(|source| StoreError::Create {
            path: path.clone(),
            source,
        })?;
        let mut writer = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        configure(&writer, &options).map_err(open_err)?;
        let mode: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode, "the database could not switch to WAL mode");
        }
        schema::migrate(&mut writer, &path)?;
        restrict_wal_files(&path);

        let reader = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        configure(&reader, &options).map_err(open_err)?;
        reader
            .pragma_update(None, "query_only", true)
            .map_err(open_err)?;

        let (jobs, queue) = mpsc::channel::<Box<dyn WriteJob>>();
        let max_batch = options.max_batch.max(1);
        let handle = std::thread::Builder::new()
            .name("ao-store-writer".into())
            .spawn(move || {
                writer_loop(writer, &queue, max_batch, options.durability);
            })
            .map_err(StoreError::SpawnWriter)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                jobs: Mutex::new(Some(jobs)),
                reader: Mutex::new(reader),
                writer: Mutex::new(Some(handle)),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The schema version of the file (the number of migrations applied).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .reader()?
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// Runs `work` in a write transaction on the writer thread and returns its result once the
    /// transaction is committed. Concurrent writes share one commit. If `work` fails, its changes
    /// are rolled back and other writes of the batch are unaffected.
    pub(crate) fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(work, false)
    }

    /// [`write`](SqliteStore::write) for a change that must survive the process being killed
    /// but may be lost with the machine's power: committed without an `fsync` when nothing else
    /// in its batch needs one. The next fsynced commit makes it durable against power loss too.
    pub(crate) fn write_light<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(work, true)
    }

    fn submit<T, F>(&self, work: F, light: bool) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel(1);
        let job = Box::new(Typed {
            work: Some(work),
            value: None,
            reply,
            light,
        });
        {
            let jobs = self.inner.jobs.lock().map_err(|_| StoreError::Poisoned)?;
            jobs.as_ref()
                .ok_or(StoreError::WriterStopped)?
                .send(job)
                .map_err(|_| StoreError::WriterStopped)?;
        }
        answer.recv().map_err(|_| StoreError::WriterStopped)?
    }

    /// The read connection. Reads see every committed write.
    pub(crate) fn reader(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.inner.reader.lock().map_err(|_| StoreError::Poisoned)
    }

    /// Checks that the database can be written now: takes and releases the write lock without
    /// changing anything.
    pub fn check_writable(&self) -> Result<(), StoreError> {
        self.write(|_| Ok(()))
    }
}

/// Creates the database file, if it does not exist, readable and writable by its owner only
/// (0600, whatever the umask), before SQLite opens it: the file holds the budgets, approvals and
/// API key hashes that restrain agents. An existing file keeps its permissions.
fn create_owner_only(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        // The umask may have taken more than group and other bits away; the owner needs both.
        #[cfg(unix)]
        Ok(file) => file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600)),
        #[cfg(not(unix))]
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Gives the write-ahead log and its index (`-wal`, `-shm`) no more permissions than the database
/// file: when the database is private to its owner, so are they. SQLite creates them with the
/// database file's mode already; this also covers files left by an older version. A failure is
/// logged, not fatal: the files stay as they were.
fn restrict_wal_files(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;

        let Ok(main) = std::fs::metadata(path) else {
            return;
        };
        if main.permissions().mode() & 0o077 != 0 {
            return;
        }
        for suffix in ["-wal", "-shm"] {
            let mut side = path.as_os_str().to_owned();
            side.push(suffix);
            let side = PathBuf::from(side);
            let Ok(meta) = std::fs::metadata(&side) else {
                continue;
            };
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0
                && let Err(error) =
                    std::fs::set_permissions(&side, std::fs::Permissions::from_mode(mode & 0o700))
            {
                tracing::warn!(path = %side.display(), %error, "cannot make the file private to its owner");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn configure(conn: &Connection, options: &StoreOptions) -> rusqlite::Result<()> {
    conn.busy_timeout(options.busy_timeout)?;
    let synchronous = match options.durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

/// Switches the connection's commits to `fsync` (`synchronous = FULL`) or not (`NORMAL`), when
/// that is not what they do already.
fn set_fsync(conn: &Connection, fsync: &mut bool, wanted: bool) {
    if wanted == *fsync {
        return;
    }
    let mode = if wanted { "FULL" } else { "NORMAL" };
    match conn.pragma_update(None, "synchronous", mode) {
        Ok(()) => *fsync = wanted,
        Err(e) => tracing::warn!(error = %e, "could not switch synchronous mode"),
    }
}

/// Commits jobs in batches: waits for one, takes whatever else is queued (up to `max_batch`), runs
/// each in its own savepoint inside one write transaction, commits once, and tells every job the
/// outcome.
fn writer_loop(
    mut conn: Connection,
    queue: &mpsc::Receiver<Box<dyn WriteJob>>,
    max_batch: usize,
    durability: Durability,
) {
    let mut fsync = durability == Durability::Full;
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // A batch of light jobs alone skips the fsync; any other batch gets the durability the
        // store was opened with.
        let wanted = durability == Durability::Full && !batch.iter().all(|j| j.light());
        set_fsync(&conn, &mut fsync, wanted);
        let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(e) => {
                let shared = Arc::new(e);
                for job in batch {
                    job.finish(Err(StoreError::Commit(Arc::clone(&shared))));
                }
                continue;
            }
        };
        let mut outcomes: Vec<Result<(), StoreError>> = Vec::with_capacity(batch.len());
        for job in &mut batch {
            // A failed statement can make SQLite roll the whole transaction back (a full disk,
            // an I/O error). Then nothing more may run in it: a savepoint outside a transaction
            // would commit on its own.
            if tx.is_autocommit() {
                outcomes.push(Err(StoreError::RolledBack));
                continue;
            }
            let outcome = match tx.savepoint() {
                Ok(mut sp) => {
                    let ran =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(&sp)))
                            .unwrap_or(Err(StoreError::WritePanicked));
                    match ran {
                        Ok(()) => sp.commit().map_err(StoreError::from),
                        Err(e) => {
                            // Dropping the savepoint rolls back this job's changes alone.
                            let _ = sp.rollback();
                            Err(e)
                        }
                    }
                }
                Err(e) => Err(StoreError::from(e)),
            };
            outcomes.push(outcome);
        }
        if tx.is_autocommit() {
            // SQLite already rolled everything back: no job of this batch happened.
            for (job, outcome) in batch.into_iter().zip(outcomes) {
                job.finish(outcome.and(Err(StoreError::RolledBack)));
            }
            continue;
        }
        match tx.commit() {
            Ok(()) => {
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    job.finish(outcome);
                }
            }
            Err(e) => {
                let shared = Arc::new(e);
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    job.finish(outcome.and(Err(StoreError::Commit(Arc::clone(&shared)))));
                }
            }
        }
    }
}
