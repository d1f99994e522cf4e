//! `ao approvals`: approval requests in a database file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use agent_orchestrator::approvals::{
    ApprovalRecord, ApprovalStatus, ApprovalStore, Verdict, build_decision_event,
};
use agent_orchestrator::store::Store;
use agent_orchestrator::types::{Clock, SystemClock};
use clap::Subcommand;

use crate::CliError;
use crate::secrets::read_keys;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The database: a SQLite file, or a PostgreSQL URL (`postgres://...`).
    #[arg(long, env = "AO_DB", value_name = "FILE|URL")]
    db: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List approval requests, oldest first (pending ones unless --all).
    List {
        /// Show decided and expired requests too.
        #[arg(long)]
        all: bool,
    },
    /// Approve a request. Signed with --key-file when the request needs an operator's or
    /// guardian's signature.
    Approve(Decide),
    /// Reject a request.
    Reject(Decide),
    /// Check the audit log's hash chain and the rows it vouches for (as `ao audit verify`); exits
    /// 1 and says what is wrong if anything is.
    VerifyLog,
}

#[derive(Debug, clap::Args)]
struct Decide {
    /// The request id.
    id: String,
    /// A file holding the operator's or a guardian's secret key (nsec or hex), to sign the
    /// decision as a NIP-SA guardian approval (kind 39213).
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Why.
    #[arg(long)]
    reason: Option<String>,
    /// Who decides, for an unsigned decision.
    #[arg(long, default_value = "cli operator")]
    by: String,
}

pub(crate) fn run(args: Args) -> Result<ExitCode, CliError> {
    let store = crate::audit::open(&args.db)?;
    match args.command {
        Command::List { all } => list(&store, all),
        Command::Approve(d) => decide(&store, d, Verdict::Approve),
        Command::Reject(d) => decide(&store, d, Verdict::Reject),
        Command::VerifyLog => verify_log(&store),
    }
}

fn time(unix: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix)).to_string()
}

fn list(store: &Store, all: bool) -> Result<ExitCode, CliError> {
    let now = SystemClock.now()?;
    let records = store.load_all()?;
    let shown: Vec<&ApprovalRecord> = records
        .iter()
        .filter(|r| all || r.status_at(now) == ApprovalStatus::Pending)
        .collect();
    if shown.is_empty() {
        println!(
            "{}",
            if all {
                "no approval requests"
            } else {
                "no pending approval requests"
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<32}  {:<9}  {:<16}  {:<20}  {:>10}  {:<20}  description",
        "id", "status", "agent", "action", "sats", "requested"
    );
    for r in shown {
        println!(
            "{:<32}  {:<9}  {:<16}  {:<20}  {:>10}  {:<20}  {}",
            r.request.request_id,
            r.status_at(now),
            r.agent,
            r.request.action_type,
            r.request.cost_estimate_sats,
            time(r.request.created_at),
            r.request.description
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn decide(store: &Store, d: Decide, verdict: Verdict) -> Result<ExitCode, CliError> {
    let now = SystemClock.now()?;
    let mut record = store
        .load(&d.id)?
        .ok_or_else(|| CliError::UnknownRequest(d.id.clone()))?;
    let (status, audit) = match &d.key_file {
        Some(path) => {
            let keys = read_keys(Path::new(path))?;
            let event = build_decision_event(&keys, &d.id, verdict, d.reason.as_deref(), now)?;
            record.apply_signed(&event, Some(verdict), now)?
        }
        None => {
            let audit = record.decide_unsigned(verdict, &d.by, d.reason.clone(), now)?;
            (record.status_at(now), audit)
        }
    };
    // Compare-and-swap: if a gateway changed the request since it was read here, nothing is
    // overwritten and the command fails; run it again to decide on what the request says now.
    record.version += 1;
    store.save(&record, audit)?;
    match status {
        ApprovalStatus::Pending => {
            let approvals = record
                .votes
                .iter()
                .filter(|v| v.verdict == Verdict::Approve)
                .count();
            println!(
                "{}: vote recorded, {approvals} of {} approvals; still pending",
                d.id, record.policy.required
            );
        }
        status => println!("{}: {status}", d.id),
    }
    Ok(ExitCode::SUCCESS)
}

/// The chain and every row it vouches for, as `ao audit verify` checks them.
fn verify_log(store: &Store) -> Result<ExitCode, CliError> {
    let report = store.audit_report()?;
    Ok(if crate::audit::print_report(&report) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
