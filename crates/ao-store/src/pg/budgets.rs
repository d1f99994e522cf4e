//! Budgets shared by every gateway on one PostgreSQL database.
//!
//! Each reservation is one call of `ao_reserve`: it locks the agent's day row and then its
//! session row, checks both limits (and the daily token cap) against what is settled and
//! reserved there, adds the reservation and writes its hold, all in one transaction. A gateway
//! makes the reservations that arrive together in one transaction (`writer.rs`: one commit for
//! many, the rows locked in agent order), since an agent's calls serialize on its row until
//! commit. So no
//! interleaving of calls on any number of gateways passes a limit, and a reservation is durable
//! (write-ahead) before its request leaves. A hold carries a lease, renewed while its call runs;
//! whichever gateway finds a hold past its lease (its gateway died) charges it at its estimate.
//! Why rows and not slices of budget handed to each gateway: a row per agent and window is
//! exact, needs nothing to be given back after a crash, and its cost is one round trip per call
//! (measured by `cargo xtask bench gateway --postgres`).

use std::time::Duration;

use ao_budget::{
    BudgetConfig, BudgetError, BudgetStatus, CostRecord, Hold, LedgerError, Limits, status_of,
};
use ao_types::{BackendProvider, TokenUsage, utc_day_end};

use super::PgStore;
use super::chain::Chain;
use super::error::{PgError, int, uint};
use super::writer::{Done, Job, Reserve, Settle, cost_entry, settle_in};

/// A reservation held in the shared budget.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SharedHold {
    /// The id of its hold.
    pub id: String,
    /// The agent it is for.
    pub agent: String,
    /// The start of the UTC day it reserved in.
    pub day: u64,
    /// The start of the session it reserved in.
    pub session: u64,
}

/// What an agent has used in one UTC day, across every gateway.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SharedSpend {
    /// Sats settled and reserved.
    pub sats: u64,
    /// Tokens settled and reserved.
    pub tokens: u64,
    /// Holds outstanding (calls in flight, on any gateway).
    pub outstanding: u64,
}

/// The budgets of every agent, kept in PostgreSQL.
#[derive(Debug, Clone)]
pub struct SharedBudgets {
    store: PgStore,
    limits: Limits,
    lease: Duration,
    owner: String,
}

fn unreachable(error: PgError) -> BudgetError {
    BudgetError::Unreachable {
        source: LedgerError::write(error),
    }
}

impl SharedBudgets {
    /// Budgets in `store` under `limits`; a hold's lease lasts `lease` and is renewed while its
    /// call runs.
    pub fn new(store: PgStore, limits: Limits, lease: Duration) -> Self {
        let bytes: [u8; 8] = rand::random();
        Self {
            store,
            limits,
            lease,
            owner: bytes.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// How long a hold's lease lasts.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// The store.
    pub fn store(&self) -> &PgStore {
        &self.store
    }

    /// Reserves `sats` (and `usage`'s tokens) for a call of `agent` in the session that started at
    /// `session_start`, on the day of `now`, to be sent to `backend`; the hold is written in the
    /// same transaction.
    pub async fn reserve(
        &self,
        agent: &str,
        session_start: u64,
        sats: u64,
        usage: TokenUsage,
        backend: BackendProvider,
        now: u64,
    ) -> Result<SharedHold, BudgetError> {
        let budget = self.limits.budget_for(agent);
        let cap = self.limits.token_cap_for(agent);
        let sats = sats.max(1);
        let tokens = usage.total().max(1);
        let id: [u8; 16] = rand::random();
        let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let day = ao_types::utc_day_start(now);
        // Limits go as text to NUMERIC, so that a limit of `u64::MAX` stays exact.
        let params = Reserve {
            agent: agent.to_owned(),
            day: int("day", day).map_err(unreachable)?,
            session: int("session", session_start).map_err(unreachable)?,
            sats: int("sats", sats).map_err(unreachable)?,
            tokens: int("tokens", tokens).map_err(unreachable)?,
            daily_limit: budget.daily_limit_sats.to_string(),
            session_limit: budget.session_limit_sats.to_string(),
            token_cap: cap.map(|c| c.to_string()),
            hold: id.clone(),
            backend: backend.as_str(),
            input: int("input", usage.input_tokens).map_err(unreachable)?,
            output: int("output", usage.output_tokens).map_err(unreachable)?,
            now: int("now", now).map_err(unreachable)?,
            lease: int("lease", self.lease.as_secs()).map_err(unreachable)?,
            owner: self.owner.clone(),
        };
        let refused = match self.store.reserve(Job::Reserve(params)).await {
            Ok(Done::Reserved(refused)) => refused,
            Ok(_) => return Err(unreachable(PgError::WorkerStopped)),
            Err(error) => return Err(unreachable(error)),
        };
        match refused {
            None => Ok(SharedHold {
                id,
                agent: agent.to_owned(),
                day,
                session: session_start,
            }),
            Some((limit, used)) => {
                Err(refusal(agent, &limit, used, sats, tokens, budget, cap, now))
            }
        }
    }

    /// Ends hold `hold`: charges `record` (its cost, tokens and time) or, with `None`, releases
    /// it. `false` when the hold was already gone (another gateway charged it after its lease):
    /// nothing is charged twice.
    pub async fn settle(
        &self,
        hold: &SharedHold,
        record: Option<&CostRecord>,
    ) -> Result<bool, BudgetError> {
        let settle = settle_of(hold, record)?;
        settled(self.store.submit(Job::Settle(settle)).await)
    }

    /// [`settle`](SharedBudgets::settle) for a blocking thread.
    pub fn settle_blocking(
        &self,
        hold: &SharedHold,
        record: Option<&CostRecord>,
    ) -> Result<bool, BudgetError> {
        let settle = settle_of(hold, record)?;
        settled(self.store.submit_blocking(Job::Settle(settle)))
    }

    /// Extends hold `hold`'s lease by a full lease from now (the database's clock).
    pub async fn renew(&self, hold: &SharedHold) -> Result<bool, BudgetError> {
        let id = hold.id.clone();
        let lease = int("lease", self.lease.as_secs()).map_err(unreachable)?;
        self.store
            .run(move |client| async move {
                let changed = client
                    .execute(
                        "UPDATE holds SET expires_at =
                           extract(epoch FROM clock_timestamp())::BIGINT + $2
                         WHERE id = $1",
                        &[&id, &lease],
                    )
                    .await?;
                Ok(changed > 0)
            })
            .await
            .map_err(unreachable)
    }

    /// Charges, at their estimates, the holds whose lease ran out (their gateway died), on any
    /// gateway; returns them for the audit log. Holds being charged by another gateway at the
    /// same moment are skipped, never charged twice.
    pub async fn recover_expired(&self) -> Result<Vec<Hold>, BudgetError> {
        self.store
            .run(|mut client| async move {
                let tx = client.transaction().await?;
                // The chain's lock before the holds' rows: the writer's lock order.
                let mut chain = Chain::lock(&tx).await?;
                let rows = tx
                    .query(
                        "SELECT id, agent, backend, input_tokens, output_tokens, cost_sats,
                                created_at, coalesce(day, 0), coalesce(session, 0)
                         FROM holds
                         WHERE expires_at < extract(epoch FROM clock_timestamp())::BIGINT
                         ORDER BY expires_at LIMIT 1000 FOR UPDATE SKIP LOCKED",
                        &[],
                    )
                    .await?;
                let mut holds = Vec::with_capacity(rows.len());
                let mut settles = Vec::with_capacity(rows.len());
                for row in &rows {
                    let hold = Hold {
                        id: row.try_get(0)?,
                        agent_name: row.try_get(1)?,
                        backend: row
                            .try_get::<_, &str>(2)?
                            .parse()
                            .unwrap_or(BackendProvider::Local),
                        input_tokens: uint("input", row.try_get(3)?)?,
                        output_tokens: uint("output", row.try_get(4)?)?,
                        cost_sats: uint("cost", row.try_get(5)?)?,
                        created_at: uint("created_at", row.try_get(6)?)?,
                    };
                    settles.push(Settle {
                        id: hold.id.clone(),
                        agent: hold.agent_name.clone(),
                        day: row.try_get(7)?,
                        session: row.try_get(8)?,
                        charge: true,
                        backend: hold.backend.as_str(),
                        input: row.try_get(3)?,
                        output: row.try_get(4)?,
                        cost: row.try_get(5)?,
                        timestamp: row.try_get(6)?,
                    });
                    holds.push(hold);
                }
                let refs: Vec<&Settle> = settles.iter().collect();
                let seqs = settle_in(&tx, &refs).await?;
                let mut recovered = Vec::with_capacity(holds.len());
                for ((hold, settle), seq) in holds.into_iter().zip(&settles).zip(seqs) {
                    if let Some(seq) = seq.filter(|seq| *seq > 0) {
                        chain.push(cost_entry(settle, seq)?);
                        recovered.push(hold);
                    }
                }
                chain.write(&tx).await?;
                tx.commit().await?;
                Ok(recovered)
            })
            .await
            .map_err(unreachable)
    }

    /// What `agent` has used on the day of `now`, across every gateway.
    pub async fn spend(&self, agent: &str, now: u64) -> Result<SharedSpend, BudgetError> {
        let agent = agent.to_owned();
        let day = int("day", ao_types::utc_day_start(now)).map_err(unreachable)?;
        self.store
            .run(move |client| async move {
                let row = client
                    .query_one(
                        "SELECT
                           coalesce((SELECT spent_sats + reserved_sats FROM budget_windows
                                     WHERE agent = $1 AND kind = 'day' AND start = $2), 0),
                           coalesce((SELECT spent_tokens + reserved_tokens FROM budget_windows
                                     WHERE agent = $1 AND kind = 'day' AND start = $2), 0),
                           (SELECT count(*) FROM holds WHERE agent = $1 AND day IS NOT NULL)",
                        &[&agent, &day],
                    )
                    .await?;
                Ok(SharedSpend {
                    sats: uint("sats", row.try_get(0)?)?,
                    tokens: uint("tokens", row.try_get(1)?)?,
                    outstanding: uint("outstanding", row.try_get(2)?)?,
                })
            })
            .await
            .map_err(unreachable)
    }

    /// Where `agent` stands against its budget on the day of `now` (its session being the day).
    pub async fn status(&self, agent: &str, now: u64) -> Result<BudgetStatus, BudgetError> {
        let spend = self.spend(agent, now).await?;
        Ok(status_of(
            self.limits.budget_for(agent),
            spend.sats,
            spend.sats,
        ))
    }
}

/// The `ao_settle` call that ends `hold`: charging `record`, or releasing it with `None`.
fn settle_of(hold: &SharedHold, record: Option<&CostRecord>) -> Result<Settle, BudgetError> {
    let (backend, input, output, cost, timestamp) = match record {
        Some(r) => (
            r.backend.as_str(),
            int("input", r.input_tokens).map_err(unreachable)?,
            int("output", r.output_tokens).map_err(unreachable)?,
            int("cost", r.cost_sats).map_err(unreachable)?,
            int("timestamp", r.timestamp).map_err(unreachable)?,
        ),
        None => ("local", 0, 0, 0, 0),
    };
    Ok(Settle {
        id: hold.id.clone(),
        agent: hold.agent.clone(),
        day: int("day", hold.day).map_err(unreachable)?,
        session: int("session", hold.session).map_err(unreachable)?,
        charge: record.is_some(),
        backend,
        input,
        output,
        cost,
        timestamp,
    })
}

fn settled(done: Result<Done, PgError>) -> Result<bool, BudgetError> {
    match done.map_err(unreachable)? {
        Done::Settled(settled) => Ok(settled),
        _ => Err(unreachable(PgError::WorkerStopped)),
    }
}

/// The error for a reservation `limit` refused, `used` being what was settled and reserved.
#[allow(
    clippy::too_many_arguments,
    reason = "the fields of the error it builds"
)]
fn refusal(
    agent: &str,
    limit: &str,
    used: u64,
    sats: u64,
    tokens: u64,
    budget: BudgetConfig,
    cap: Option<u64>,
    now: u64,
) -> BudgetError {
    match limit {
        "session" => BudgetError::SessionExceeded {
            agent: agent.to_owned(),
            limit_sats: budget.session_limit_sats,
            spent_sats: used,
            requested_sats: sats,
        },
        "tokens" => BudgetError::DailyTokensExceeded {
            agent: agent.to_owned(),
            limit_tokens: cap.unwrap_or(0),
            used_tokens: used,
            requested_tokens: tokens,
            resets_at: utc_day_end(now),
        },
        _ => BudgetError::DailyExceeded {
            agent: agent.to_owned(),
            limit_sats: budget.daily_limit_sats,
            spent_sats: used,
            requested_sats: sats,
            resets_at: utc_day_end(now),
        },
    }
}
