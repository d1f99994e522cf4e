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
use deadpool_postgres::{GenericClient, Pool};
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
    /// The windows the hold reserved in: charged all the same if the hold was lost.
    pub(crate) day: i64,
    pub(crate) session: i64,
    pub(crate) charge: bool,
    pub(crate) backend: &'static str,
    pub(crate) input: i64,
    pub(crate) output: i64,
    pub(crate) cost: i64,
    pub(crate) timestamp: i64,
}

/// Reserves for one call (`ao_reserve`) and writes its hold.
#[derive(Debug, Clone)]
pub(crate) struct Reserve {
    pub(crate) agent: String,
    pub(crate) day: i64,
    pub(crate) session: i64,
    pub(crate) sats: i64,
    pub(crate) tokens: i64,
    /// The limits as decimal text, read as `NUMERIC` (exact up to `u64::MAX`).
    pub(crate) daily_limit: String,
    pub(crate) session_limit: String,
    pub(crate) token_cap: Option<String>,
    pub(crate) hold: String,
    pub(crate) backend: &'static str,
    pub(crate) input: i64,
    pub(crate) output: i64,
    pub(crate) now: i64,
    pub(crate) lease: i64,
    pub(crate) owner: String,
}

/// A write for the writer.
pub(crate) enum Job {
    /// End a hold; answered with whether it was still there.
    Settle(Settle),
    /// Append an audit entry; answered with the entry.
    Append(AuditEvent),
    /// Reserve for a call; answered with the refusing limit and what was used, if refused.
    Reserve(Reserve),
}

/// What a job did.
pub(crate) enum Done {
    /// Whether the hold was still there (and is now settled or released).
    Settled(bool),
    /// The entry appended.
    Appended(AuditEntry),
    /// `None` when admitted, else the limit that refused and what was used against it.
    Reserved(Option<(String, u64)>),
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

/// Writes `jobs` in one transaction: reservations alone in one statement (their own
/// transaction); anything else under the chain's lock, taken first.
async fn write(pool: &Pool, jobs: &[Job]) -> Result<Vec<Done>, PgError> {
    let mut client = pool.get().await.map_err(PgError::pool)?;
    if jobs.iter().all(|j| matches!(j, Job::Reserve(_))) {
        // Reservations alone: one statement, its own transaction, one round trip.
        let reserves: Vec<&Reserve> = jobs
            .iter()
            .filter_map(|j| match j {
                Job::Reserve(r) => Some(r),
                _ => None,
            })
            .collect();
        let reserved = reserve_in(&client, &reserves).await.map_err(lost_query)?;
        return Ok(reserved.into_iter().map(Done::Reserved).collect());
    }
    let tx = client.transaction().await?;
    let mut chain = Chain::lock(&tx).await?;
    let settles: Vec<&Settle> = jobs
        .iter()
        .filter_map(|j| match j {
            Job::Settle(s) => Some(s),
            _ => None,
        })
        .collect();
    let reserves: Vec<&Reserve> = jobs
        .iter()
        .filter_map(|j| match j {
            Job::Reserve(r) => Some(r),
            _ => None,
        })
        .collect();
    let mut settled = settle_in(&tx, &settles).await?.into_iter();
    let mut reserved = reserve_in(&tx, &reserves).await?.into_iter();
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
            Job::Reserve(_) => done.push(Done::Reserved(reserved.next().flatten())),
        }
    }
    chain.write(&tx).await?;
    tx.commit().await.map_err(lost)?;
    Ok(done)
}

/// The order to lock `agents`' budget rows in: by agent, arrival order kept within one. Every
/// transaction that locks several agents' rows locks them in this order, so none waits on
/// another in a cycle.
fn by_agent<'a>(agents: impl Iterator<Item = &'a str>) -> Vec<usize> {
    let agents: Vec<&str> = agents.collect();
    let mut order: Vec<usize> = (0..agents.len()).collect();
    order.sort_by_key(|&i| agents[i]);
    order
}

/// Puts `results`, in `order`, back in arrival order.
fn unsorted<T: Default + Clone>(order: &[usize], results: Vec<T>) -> Vec<T> {
    let mut back = vec![T::default(); order.len()];
    for (&i, result) in order.iter().zip(results) {
        back[i] = result;
    }
    back
}

/// Runs `ao_reserve` for every one of `reserves`, locking agents' rows in agent order, in one
/// statement; for each, `None` when admitted, else the refusing limit and what was used.
async fn reserve_in(
    client: &impl GenericClient,
    reserves: &[&Reserve],
) -> Result<Vec<Option<(String, u64)>>, PgError> {
    if reserves.is_empty() {
        return Ok(Vec::new());
    }
    let order = by_agent(reserves.iter().map(|r| r.agent.as_str()));
    let sorted: Vec<&Reserve> = order.iter().map(|&i| reserves[i]).collect();
    let column = |f: fn(&Reserve) -> i64| sorted.iter().map(|r| f(r)).collect::<Vec<i64>>();
    let text = |f: fn(&Reserve) -> &str| sorted.iter().map(|r| f(r)).collect::<Vec<&str>>();
    let caps: Vec<Option<&str>> = sorted.iter().map(|r| r.token_cap.as_deref()).collect();
    let statement = client
        .prepare_cached(
            "SELECT r.refused, r.used::TEXT
             FROM unnest($1::TEXT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[],
                         $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::TEXT[],
                         $11::BIGINT[], $12::BIGINT[], $13::BIGINT[], $14::BIGINT[], $15::TEXT[])
                  WITH ORDINALITY AS u(agent, day, session, sats, tokens, daily, sess, cap, hold,
                                       backend, input, output, now, lease, owner, n)
             CROSS JOIN LATERAL ao_reserve(u.agent, u.day, u.session, u.sats, u.tokens,
                 u.daily::NUMERIC, u.sess::NUMERIC, u.cap::NUMERIC, u.hold, u.backend, u.input,
                 u.output, u.now, extract(epoch FROM clock_timestamp())::BIGINT + u.lease,
                 u.owner) AS r
             ORDER BY u.n",
        )
        .await?;
    let rows = client
        .query(
            &statement,
            &[
                &text(|r| &r.agent),
                &column(|r| r.day),
                &column(|r| r.session),
                &column(|r| r.sats),
                &column(|r| r.tokens),
                &text(|r| &r.daily_limit),
                &text(|r| &r.session_limit),
                &caps,
                &text(|r| &r.hold),
                &text(|r| r.backend),
                &column(|r| r.input),
                &column(|r| r.output),
                &column(|r| r.now),
                &column(|r| r.lease),
                &text(|r| &r.owner),
            ],
        )
        .await?;
    let results = rows
        .iter()
        .map(|row| {
            let refused: Option<String> = row.try_get(0)?;
            let used: Option<String> = row.try_get(1)?;
            Ok(refused.map(|limit| {
                let used = used.and_then(|u| u.parse().ok()).unwrap_or(u64::MAX);
                (limit, used)
            }))
        })
        .collect::<Result<Vec<_>, PgError>>()?;
    Ok(unsorted(&order, results))
}

/// A statement that committed on its own and did not answer may have happened.
fn lost_query(error: PgError) -> PgError {
    match error {
        PgError::Query(e) => lost(e),
        other => other,
    }
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

/// Runs `ao_settle` for every one of `settles`, locking agents' rows in agent order, in one
/// statement; for each, the cost record's seq when charged, 0 when released, `None` when the
/// hold was gone.
pub(crate) async fn settle_in(
    tx: &deadpool_postgres::Transaction<'_>,
    settles: &[&Settle],
) -> Result<Vec<Option<i64>>, PgError> {
    if settles.is_empty() {
        return Ok(Vec::new());
    }
    let order = by_agent(settles.iter().map(|s| s.agent.as_str()));
    let sorted: Vec<&Settle> = order.iter().map(|&i| settles[i]).collect();
    let ids: Vec<&str> = sorted.iter().map(|s| s.id.as_str()).collect();
    let agents: Vec<&str> = sorted.iter().map(|s| s.agent.as_str()).collect();
    let days: Vec<i64> = sorted.iter().map(|s| s.day).collect();
    let sessions: Vec<i64> = sorted.iter().map(|s| s.session).collect();
    let charge: Vec<bool> = sorted.iter().map(|s| s.charge).collect();
    let backend: Vec<&str> = sorted.iter().map(|s| s.backend).collect();
    let input: Vec<i64> = sorted.iter().map(|s| s.input).collect();
    let output: Vec<i64> = sorted.iter().map(|s| s.output).collect();
    let cost: Vec<i64> = sorted.iter().map(|s| s.cost).collect();
    let timestamp: Vec<i64> = sorted.iter().map(|s| s.timestamp).collect();
    let statement = tx
        .prepare_cached(
            "SELECT ao_settle(h, a, d, s, c, b, i, o, k, t)
             FROM unnest($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::BIGINT[], $5::BOOLEAN[],
                         $6::TEXT[], $7::BIGINT[], $8::BIGINT[], $9::BIGINT[], $10::BIGINT[])
                  WITH ORDINALITY AS u(h, a, d, s, c, b, i, o, k, t, n)
             ORDER BY n",
        )
        .await?;
    let rows = tx
        .query(
            &statement,
            &[
                &ids, &agents, &days, &sessions, &charge, &backend, &input, &output, &cost,
                &timestamp,
            ],
        )
        .await?;
    let results = rows
        .iter()
        .map(|row| Ok(row.try_get::<_, Option<i64>>(0)?))
        .collect::<Result<Vec<_>, PgError>>()?;
    Ok(unsorted(&order, results))
}
