//! The store's writer: the writes on every request's path (settling holds, appending audit
//! entries) are queued and committed together, many per transaction (group commit), the way
//! the SQLite store's writer thread does.
//!
//! The audit log is one hash chain, so its appends are serialized across every gateway (the
//! chain's advisory lock, held until commit); one commit per write would cap a whole cluster at
//! one commit time per entry. A batch takes the lock once, settles its holds in one statement,
//! chains its entries in memory and inserts them in one statement. A batch that a statement
//! refuses is retried one write at a time, so one bad write fails alone.

use std::borrow::Cow;
use std::sync::Arc;

use ao_audit::{AuditEntry, AuditEvent};
use deadpool_postgres::Pool;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use super::chain::Chain;
use super::error::PgError;
use crate::rows::{CostDetail, cost_event};

/// The most writes committed in one transaction.
const MAX_BATCH: usize = 512;

/// Ends one hold (`ao_settle`): charged with a cost record, or released.
#[derive(Debug, Clone)]
pub(crate) struct Settle {
    pub(crate) id: String,
    pub(crate) agent: String,
    pub(crate) charge: bool,
    pub(crate) backend: &'static str,
    pub(crate) input: i64,
    pub(crate) output: i64,
    pub(crate) cost: i64,
    pub(crate) timestamp: i64,
}

/// A write for the writer.
pub(crate) enum Job {
    /// End a hold; answered with whether it was still there.
    Settle(Settle),
    /// Append an audit entry; answered with the entry.
    Append(AuditEvent),
}

/// What a job did.
pub(crate) enum Done {
    /// Whether the hold was still there (and is now settled or released).
    Settled(bool),
    /// The entry appended.
    Appended(AuditEntry),
}

struct Queued {
    job: Job,
    reply: oneshot::Sender<Result<Done, PgError>>,
}

/// The queue into the writer task; cheap to clone. The task ends with the last clone.
#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::UnboundedSender<Queued>,
}

impl Writer {
    /// Starts the writer task on `runtime`, writing through `pool`.
    pub(crate) fn start(runtime: &Handle, pool: Pool) -> Self {
        let (queue, jobs) = mpsc::unbounded_channel();
        drop(runtime.spawn(run(pool, jobs)));
        Self { queue }
    }

    /// Queues `job` and waits until its batch is committed (or failed).
    pub(crate) async fn submit(&self, job: Job) -> Result<Done, PgError> {
        let (reply, done) = oneshot::channel();
        self.queue
            .send(Queued { job, reply })
            .map_err(|_| PgError::WorkerStopped)?;
        done.await.map_err(|_| PgError::WorkerStopped)?
    }
}

async fn run(pool: Pool, mut jobs: mpsc::UnboundedReceiver<Queued>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let queued: Vec<Queued> = std::mem::take(&mut batch);
        let (work, replies): (Vec<Job>, Vec<_>) =
            queued.into_iter().map(|q| (q.job, q.reply)).unzip();
        match write(&pool, &work).await {
            Ok(done) => {
                for (reply, done) in replies.into_iter().zip(done) {
                    let _ = reply.send(Ok(done));
                }
            }
            // A statement refused something in the batch: each write on its own, so that only
            // the one at fault fails.
            Err(error) if work.len() > 1 && !error.is_unavailable() => {
                for (job, reply) in work.into_iter().zip(replies) {
                    let done = write(&pool, std::slice::from_ref(&job)).await;
                    let _ =
                        reply.send(done.and_then(|mut d| d.pop().ok_or(PgError::WorkerStopped)));
                }
            }
            Err(error) => {
                let error = Arc::new(error);
                for reply in replies {
                    let _ = reply.send(Err(PgError::Batch(Arc::clone(&error))));
                }
            }
        }
    }
}

/// Writes `jobs` in one transaction.
async fn write(pool: &Pool, jobs: &[Job]) -> Result<Vec<Done>, PgError> {
    let mut client = pool.get().await.map_err(PgError::pool)?;
    let tx = client.transaction().await?;
    let mut chain = Chain::lock(&tx).await?;
    let settles: Vec<&Settle> = jobs
        .iter()
        .filter_map(|j| match j {
            Job::Settle(s) => Some(s),
            Job::Append(_) => None,
        })
        .collect();
    let mut settled = settle_in(&tx, &settles).await?.into_iter();
    let mut done = Vec::with_capacity(jobs.len());
    for job in jobs {
        match job {
            Job::Settle(settle) => {
                let recorded = settled.next().flatten();
                if let Some(seq) = recorded.filter(|seq| *seq > 0) {
                    chain.push(cost_entry(settle, seq)?);
                }
                done.push(Done::Settled(recorded.is_some()));
            }
            Job::Append(event) => done.push(Done::Appended(chain.push(event.clone()))),
        }
    }
    chain.write(&tx).await?;
    tx.commit().await.map_err(lost)?;
    Ok(done)
}

/// A commit that did not answer may have happened.
fn lost(error: tokio_postgres::Error) -> PgError {
    if error.as_db_error().is_some() {
        PgError::Query(error)
    } else {
        PgError::Lost {
            reason: error.to_string(),
        }
    }
}

/// The audit event of the cost record `seq` that settling `settle` wrote.
pub(crate) fn cost_entry(settle: &Settle, seq: i64) -> Result<AuditEvent, PgError> {
    let detail = CostDetail {
        seq,
        backend: Cow::Borrowed(settle.backend),
        input_tokens: settle.input,
        output_tokens: settle.output,
        cost_sats: settle.cost,
        timestamp: settle.timestamp,
        adopted: false,
    };
    Ok(cost_event(&settle.agent, &detail)?)
}

/// Runs `ao_settle` for every one of `settles`, in order, in one statement; for each, the cost
/// record's seq when charged, 0 when released, `None` when the hold was gone.
pub(crate) async fn settle_in(
    tx: &deadpool_postgres::Transaction<'_>,
    settles: &[&Settle],
) -> Result<Vec<Option<i64>>, PgError> {
    if settles.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = settles.iter().map(|s| s.id.as_str()).collect();
    let charge: Vec<bool> = settles.iter().map(|s| s.charge).collect();
    let backend: Vec<&str> = settles.iter().map(|s| s.backend).collect();
    let input: Vec<i64> = settles.iter().map(|s| s.input).collect();
    let output: Vec<i64> = settles.iter().map(|s| s.output).collect();
    let cost: Vec<i64> = settles.iter().map(|s| s.cost).collect();
    let timestamp: Vec<i64> = settles.iter().map(|s| s.timestamp).collect();
    let rows = tx
        .query(
            "SELECT ao_settle(h, c, b, i, o, k, t)
             FROM unnest($1::TEXT[], $2::BOOLEAN[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[],
                         $6::BIGINT[], $7::BIGINT[]) WITH ORDINALITY AS u(h, c, b, i, o, k, t, n)
             ORDER BY n",
            &[&ids, &charge, &backend, &input, &output, &cost, &timestamp],
        )
        .await?;
    rows.iter()
        .map(|row| Ok(row.try_get::<_, Option<i64>>(0)?))
        .collect()
}
