//! Verifying the audit log against the tables it vouches for: the chain's links, then every
//! cost record, API key and stored checkpoint against the entry written with it (`rows.rs`), then
//! every stored checkpoint against the chain.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use ao_audit::{AuditEntry, ChainHead, Checkpoint, parse_checkpoint_json, verify_chain};
use rusqlite::Connection;

use crate::audit::entries_in;
use crate::error::StoreError;
use crate::finding::{AuditedRow, Finding};
use crate::rows::{
    CHECKPOINT_STORED, COST_RECORDED, CheckpointStored, CostDetail, KEY_CREATED, KEY_REVOKED,
    KeyCreated, KeyRevoked,
};
use crate::store::SqliteStore;

/// What [`SqliteStore::audit_report`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditReport {
    /// The number of entries in the chain.
    pub entries: u64,
    /// The last entry's sequence number and hash: what a checkpoint signs.
    pub head: Option<ChainHead>,
    /// The database's `application_id`.
    pub application_id: u32,
    /// Cost records checked against their entries.
    pub cost_records: u64,
    /// API keys checked against their entries.
    pub api_keys: u64,
    /// The stored checkpoints that are validly signed and match the chain. Who signed each is
    /// the caller's to judge.
    pub checkpoints: Vec<Checkpoint>,
    /// Everything wrong: a broken chain first, then by entry; empty when the log and the tables
    /// agree.
    pub findings: Vec<Finding>,
}

impl AuditReport {
    /// Whether nothing was found wrong.
    pub fn is_intact(&self) -> bool {
        self.findings.is_empty()
    }
}

struct KeyClaim<'e> {
    entry: u64,
    agent: &'e str,
    created: KeyCreated,
    revoked_at: Option<i64>,
}

/// What the entries say the tables hold, by row key.
#[derive(Default)]
struct Claims<'e> {
    costs: HashMap<i64, (u64, &'e str, CostDetail<'e>)>,
    keys: BTreeMap<String, KeyClaim<'e>>,
    checkpoints: BTreeMap<String, (u64, CheckpointStored)>,
}

impl<'e> Claims<'e> {
    /// Reads what every entry of a row's kind says, in order (a revocation applies to the key
    /// created before it). What makes no sense is a finding.
    fn read(entries: &'e [AuditEntry], findings: &mut Vec<Finding>) -> Self {
        let mut claims = Claims::default();
        for entry in entries {
            let read = match entry.kind.as_str() {
                COST_RECORDED => claims.cost(entry, findings),
                KEY_CREATED => claims.key_created(entry, findings),
                KEY_REVOKED => claims.key_revoked(entry),
                CHECKPOINT_STORED => serde_json::from_str::<CheckpointStored>(&entry.detail)
                    .map(|d| {
                        claims.checkpoints.insert(d.id.clone(), (entry.seq, d));
                    })
                    .map_err(|_| "is not a readable checkpoint record"),
                _ => Ok(()),
            };
            if let Err(problem) = read {
                findings.push(Finding::BadEntry {
                    entry: entry.seq,
                    problem,
                });
            }
        }
        claims
    }

    fn cost(
        &mut self,
        entry: &'e AuditEntry,
        findings: &mut Vec<Finding>,
    ) -> Result<(), &'static str> {
        let detail = serde_json::from_str::<CostDetail<'e>>(&entry.detail)
            .map_err(|_| "is not a readable cost record")?;
        let seq = detail.seq;
        // The row is checked against the later entry; the earlier one's row is gone.
        if let Some((first, _, _)) = self.costs.insert(seq, (entry.seq, &entry.agent, detail)) {
            findings.push(Finding::Reused {
                row: AuditedRow::CostRecord(seq),
                first,
                second: entry.seq,
            });
        }
        Ok(())
    }

    fn key_created(
        &mut self,
        entry: &'e AuditEntry,
        findings: &mut Vec<Finding>,
    ) -> Result<(), &'static str> {
        let created = serde_json::from_str::<KeyCreated>(&entry.detail)
            .map_err(|_| "is not a readable API key creation")?;
        let id = created.id.clone();
        let claim = KeyClaim {
            entry: entry.seq,
            agent: &entry.agent,
            created,
            revoked_at: None,
        };
        if let Some(old) = self.keys.insert(id.clone(), claim) {
            findings.push(Finding::Reused {
                row: AuditedRow::ApiKey(id),
                first: old.entry,
                second: entry.seq,
            });
        }
        Ok(())
    }

    fn key_revoked(&mut self, entry: &AuditEntry) -> Result<(), &'static str> {
        let revoked = serde_json::from_str::<KeyRevoked>(&entry.detail)
            .map_err(|_| "is not a readable API key revocation")?;
        let claim = self
            .keys
            .get_mut(&revoked.id)
            .ok_or("revokes an API key that no earlier entry created")?;
        if claim.revoked_at.is_some() {
            return Err("revokes an API key that an earlier entry revoked");
        }
        claim.revoked_at = Some(revoked.revoked_at);
        Ok(())
    }
}

/// The first of `columns` (name, in the table, in the log) that differs, as a finding.
fn first_difference(
    row: AuditedRow,
    entry: u64,
    columns: &[(&'static str, &dyn fmt::Display, &dyn fmt::Display)],
) -> Option<Finding> {
    columns
        .iter()
        .map(|(field, table, log)| (field, table.to_string(), log.to_string()))
        .find(|(_, table, log)| table != log)
        .map(|(field, in_table, in_log)| Finding::Edited {
            row,
            entry,
            field,
            in_table,
            in_log,
        })
}

/// An optional time as a finding shows it.
struct Maybe(Option<i64>);

impl fmt::Display for Maybe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{v}"),
            None => f.write_str("empty"),
        }
    }
}

/// A cost record's columns: seq, agent, backend, input and output tokens, cost, timestamp.
pub(crate) type CostRow = (i64, String, String, i64, i64, i64, i64);

/// Checks every cost record against its entry; returns how many rows there are.
fn check_costs(rows: Vec<CostRow>, claims: &mut Claims<'_>, findings: &mut Vec<Finding>) -> u64 {
    let mut count = 0u64;
    for (seq, agent, backend, input, output, cost, timestamp) in rows {
        count += 1;
        let Some((entry, claimed_agent, d)) = claims.costs.remove(&seq) else {
            findings.push(Finding::Unrecorded {
                row: AuditedRow::CostRecord(seq),
            });
            continue;
        };
        let same = agent == claimed_agent
            && backend == d.backend
            && (input, output, cost, timestamp)
                == (d.input_tokens, d.output_tokens, d.cost_sats, d.timestamp);
        if same {
            continue;
        }
        findings.extend(first_difference(
            AuditedRow::CostRecord(seq),
            entry,
            &[
                ("agent", &agent, &claimed_agent),
                ("backend", &backend, &d.backend),
                ("input_tokens", &input, &d.input_tokens),
                ("output_tokens", &output, &d.output_tokens),
                ("cost_sats", &cost, &d.cost_sats),
                ("timestamp", &timestamp, &d.timestamp),
            ],
        ));
    }
    let mut gone: Vec<(u64, i64)> = claims.costs.drain().map(|(seq, c)| (c.0, seq)).collect();
    gone.sort_unstable();
    findings.extend(gone.into_iter().map(|(entry, seq)| Finding::Deleted {
        row: AuditedRow::CostRecord(seq),
        entry,
    }));
    count
}

/// An API key's columns: id, agent, sha256, created_at, revoked_at.
pub(crate) type KeyRow = (String, String, String, i64, Option<i64>);

/// Checks every API key against the entries that created and revoked it; returns how many rows
/// there are.
fn check_keys(rows: Vec<KeyRow>, claims: &mut Claims<'_>, findings: &mut Vec<Finding>) -> u64 {
    let mut count = 0u64;
    for (id, agent, sha256, created_at, revoked_at) in rows {
        count += 1;
        let Some(claim) = claims.keys.remove(&id) else {
            findings.push(Finding::Unrecorded {
                row: AuditedRow::ApiKey(id),
            });
            continue;
        };
        findings.extend(first_difference(
            AuditedRow::ApiKey(id),
            claim.entry,
            &[
                ("agent", &agent, &claim.agent),
                ("sha256", &sha256, &claim.created.sha256),
                ("created_at", &created_at, &claim.created.created_at),
                ("revoked_at", &Maybe(revoked_at), &Maybe(claim.revoked_at)),
            ],
        ));
    }
    findings.extend(
        std::mem::take(&mut claims.keys)
            .into_iter()
            .map(|(id, claim)| Finding::Deleted {
                row: AuditedRow::ApiKey(id),
                entry: claim.entry,
            }),
    );
    count
}

/// Checks every stored checkpoint against its entry and against the chain; returns those that
/// hold.
fn check_checkpoints(
    rows: Vec<(String, String)>,
    claims: &mut Claims<'_>,
    chain: (u32, &[AuditEntry]),
    findings: &mut Vec<Finding>,
) -> Vec<Checkpoint> {
    let mut holding = Vec::new();
    for (id, event) in rows {
        let row = AuditedRow::Checkpoint(id.clone());
        let claim = claims.checkpoints.remove(&id);
        if claim.is_none() {
            // Still checked below: what a checkpoint says stands on its signature.
            findings.push(Finding::Unrecorded { row: row.clone() });
        }
        let checkpoint = match parse_checkpoint_json(&event) {
            Ok(checkpoint) => checkpoint,
            Err(error) => {
                findings.push(Finding::CheckpointInvalid { row, error });
                continue;
            }
        };
        if let Some((entry, claim)) = claim
            && let Some(edited) = first_difference(
                row.clone(),
                entry,
                &[
                    ("event id", &checkpoint.event.id.to_hex(), &claim.id),
                    ("seq", &checkpoint.head.seq, &claim.seq),
                    ("hash", &checkpoint.head.hash, &claim.hash),
                    ("signer", &checkpoint.signer.to_hex(), &claim.signer),
                ],
            )
        {
            findings.push(edited);
            continue;
        }
        match checkpoint.check_chain(chain.0, chain.1) {
            Ok(()) => holding.push(checkpoint),
            Err(mismatch) => findings.push(Finding::CheckpointMismatch {
                row,
                seq: checkpoint.head.seq,
                mismatch,
            }),
        }
    }
    let mut gone: Vec<(u64, String)> = std::mem::take(&mut claims.checkpoints)
        .into_iter()
        .map(|(id, (entry, _))| (entry, id))
        .collect();
    gone.sort_unstable();
    findings.extend(gone.into_iter().map(|(entry, id)| Finding::Deleted {
        row: AuditedRow::Checkpoint(id),
        entry,
    }));
    holding
}

/// The database's `application_id`, read on `conn`.
pub(crate) fn application_id_in(conn: &Connection) -> Result<u32, StoreError> {
    let id: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    Ok(u32::from_be_bytes(id.to_be_bytes()))
}

/// Everything an audit report is made from, read from one snapshot of a database.
pub(crate) struct Snapshot {
    pub(crate) entries: Vec<AuditEntry>,
    pub(crate) application_id: u32,
    pub(crate) costs: Vec<CostRow>,
    pub(crate) keys: Vec<KeyRow>,
    pub(crate) checkpoints: Vec<(String, String)>,
}

impl SqliteStore {
    /// Checks the audit log and every row it vouches for, from one snapshot of the file: the
    /// chain's links; each cost record, API key and stored checkpoint against the entry written
    /// with it (a row deleted, edited or inserted behind the store's back is a [`Finding`]); and
    /// each stored checkpoint's signature and head against the chain.
    ///
    /// It reads the whole log into memory.
    pub fn audit_report(&self) -> Result<AuditReport, StoreError> {
        let conn = self.reader()?;
        // One read transaction: the entries and the rows are of the same commit.
        let snapshot = conn.unchecked_transaction()?;
        let costs = snapshot
            .prepare(
                "SELECT seq, agent, backend, input_tokens, output_tokens, cost_sats, timestamp
                 FROM cost_records ORDER BY seq",
            )?
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })?
            .collect::<Result<Vec<CostRow>, _>>()?;
        let keys = snapshot
            .prepare("SELECT id, agent, sha256, created_at, revoked_at FROM api_keys ORDER BY id")?
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<Vec<KeyRow>, _>>()?;
        let checkpoints = snapshot
            .prepare("SELECT id, event FROM checkpoints ORDER BY created_at, id")?
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(report(Snapshot {
            entries: entries_in(&snapshot, 1, usize::MAX)?,
            application_id: application_id_in(&snapshot)?,
            costs,
            keys,
            checkpoints,
        }))
    }
}

/// The audit report of `snapshot`: every check, whatever database it was read from.
pub(crate) fn report(snapshot: Snapshot) -> AuditReport {
    let Snapshot {
        entries,
        application_id,
        costs,
        keys,
        checkpoints,
    } = snapshot;
    let mut findings = Vec::new();
    let mut chain = Vec::new();
    if let Err(link) = verify_chain(&entries) {
        chain.push(Finding::Chain(link));
    }
    let mut claims = Claims::read(&entries, &mut findings);
    let cost_records = check_costs(costs, &mut claims, &mut findings);
    let api_keys = check_keys(keys, &mut claims, &mut findings);
    let checkpoints = check_checkpoints(
        checkpoints,
        &mut claims,
        (application_id, &entries),
        &mut findings,
    );
    // By entry; what concerns no entry last. The sort is stable: rows stay in table order.
    findings.sort_by_key(|f| f.entry().unwrap_or(u64::MAX));
    chain.extend(findings);
    AuditReport {
        entries: u64::try_from(entries.len()).unwrap_or(u64::MAX),
        head: entries.last().map(ChainHead::of),
        application_id,
        cost_records,
        api_keys,
        checkpoints,
        findings: chain,
    }
}
