//! `ao audit`: verify a database's audit log against its tables and checkpoints, and anchor it
//! with a checkpoint signed by the operator.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use agent_orchestrator::audit::{
    ChainHead, Checkpoint, CheckpointError, parse_checkpoint, parse_checkpoint_json,
    sign_checkpoint,
};
use agent_orchestrator::identity::parse_public_key;
use agent_orchestrator::store::{AuditReport, PgOptions, PgStore, SqliteStore, Store, StoreError};
use agent_orchestrator::types::{Clock, SystemClock};
use clap::Subcommand;
use nostr::{JsonUtil, PublicKey, ToBech32};
use serde::Deserialize;

use crate::CliError;
use crate::files::read;
use crate::secrets::read_keys;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sign the head of the audit log with the operator's key (a kind-30078 Nostr event), store
    /// it in the database and print it. Keep the printed event somewhere the database is not.
    Checkpoint(CheckpointArgs),
    /// Check the hash chain, every cost record, API key and checkpoint against it, and a
    /// checkpoint kept elsewhere; exits 1 and says what is wrong if anything is.
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
struct CheckpointArgs {
    /// The database (a SQLite file or a `postgres://` URL), whose log is verified before its
    /// head is signed.
    #[arg(
        long,
        env = "AO_DB",
        value_name = "FILE|URL",
        conflicts_with = "head",
        required_unless_present = "head"
    )]
    db: Option<PathBuf>,
    /// Instead of a database: a head as `GET /admin/audit/head` gives it (JSON), to sign and
    /// print only; post the event to `/admin/audit/checkpoint`.
    #[arg(long, value_name = "FILE")]
    head: Option<PathBuf>,
    /// The operator's secret key (nsec or hex).
    #[arg(long, value_name = "FILE")]
    key_file: PathBuf,
    /// The log's name in the event's `d` tag.
    #[arg(long, default_value = "default")]
    label: String,
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The database: a SQLite file, or a PostgreSQL URL (`postgres://...`).
    #[arg(long, env = "AO_DB", value_name = "FILE|URL")]
    db: PathBuf,
    /// A checkpoint event (JSON) kept outside the database: the log must still hold the entry it
    /// signed, with the hash it signed.
    #[arg(long, value_name = "FILE", requires = "operator")]
    checkpoint: Vec<PathBuf>,
    /// The operator whose signature a checkpoint must carry (hex or npub).
    #[arg(long, value_name = "KEY")]
    operator: Option<String>,
}

/// The head file: what `GET /admin/audit/head` answers.
#[derive(Debug, Deserialize)]
struct HeadFile {
    seq: u64,
    hash: String,
    application_id: String,
}

pub(crate) fn run(args: Args) -> Result<ExitCode, CliError> {
    match args.command {
        Command::Checkpoint(args) => checkpoint(args),
        Command::Verify(args) => verify(args),
    }
}

/// `db` as it may be printed: a URL without its password.
pub(crate) fn shown(db: &Path) -> String {
    let text = db.display().to_string();
    match (text.find("://"), text.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &text[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _password)) => {
                    format!("{}{user}:***{}", &text[..scheme + 3], &text[at..])
                }
                None => text,
            }
        }
        _ => text,
    }
}

/// Opens an existing database: a SQLite file, or PostgreSQL when `db` is a `postgres://` URL.
pub(crate) fn open(db: &Path) -> Result<Store, CliError> {
    if let Some(url) = db
        .to_str()
        .filter(|d| d.starts_with("postgres://") || d.starts_with("postgresql://"))
    {
        let store = PgStore::connect(url, PgOptions::default()).map_err(StoreError::from)?;
        return Ok(store.into());
    }
    if !db.exists() {
        return Err(CliError::NoDatabase(db.to_owned()));
    }
    Ok(SqliteStore::open(db)?.into())
}

fn time(unix: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix)).to_string()
}

fn npub(key: &PublicKey) -> String {
    key.to_bech32().unwrap_or_else(|_| key.to_hex())
}

fn read_head(path: &Path) -> Result<(ChainHead, u32), CliError> {
    let bad = |reason: String| CliError::BadInput {
        what: "--head",
        expected: "the JSON that GET /admin/audit/head answers",
        reason,
    };
    let head: HeadFile = serde_json::from_str(&read(path)?).map_err(|e| bad(e.to_string()))?;
    let application_id = head
        .application_id
        .strip_prefix("0x")
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        .ok_or_else(|| bad("application_id is not a hex number like 0x414f5331".into()))?;
    Ok((
        ChainHead {
            seq: head.seq,
            hash: head.hash,
        },
        application_id,
    ))
}

fn checkpoint(args: CheckpointArgs) -> Result<ExitCode, CliError> {
    let keys = read_keys(&args.key_file)?;
    let now = SystemClock.now()?;
    let (store, db) = match (&args.db, &args.head) {
        (Some(db), _) => (open(db)?, db),
        (None, Some(path)) => {
            let (head, application_id) = read_head(path)?;
            let event = sign_checkpoint(&keys, &head, application_id, &args.label, now)?;
            println!("{}", event.as_json());
            return Ok(ExitCode::SUCCESS);
        }
        (None, None) => {
            return Err(CliError::BadInput {
                what: "ao audit checkpoint",
                expected: "given --db or --head",
                reason: "neither was given".into(),
            });
        }
    };
    // The signature says "this is the log I saw": sign only a log that verifies.
    let report = store.audit_report()?;
    if !report.is_intact() {
        print_findings(&report);
        return Err(CliError::LogNotIntact {
            findings: report.findings.len(),
        });
    }
    let head = report.head.ok_or(CheckpointError::EmptyLog)?;
    let event = sign_checkpoint(&keys, &head, report.application_id, &args.label, now)?;
    store.add_checkpoint(&parse_checkpoint(&event)?)?;
    eprintln!(
        "checkpoint of entry {} stored in {}; keep this event where the database is not (a relay, another machine):",
        head.seq,
        shown(db)
    );
    println!("{}", event.as_json());
    Ok(ExitCode::SUCCESS)
}

/// Prints every finding, one a line.
fn print_findings(report: &AuditReport) {
    for finding in &report.findings {
        println!("{finding}");
    }
}

/// Prints what a report found; returns whether the log is intact.
pub(crate) fn print_report(report: &AuditReport) -> bool {
    if !report.is_intact() {
        print_findings(report);
        println!(
            "the audit log and the database disagree: {} finding(s)",
            report.findings.len()
        );
        return false;
    }
    println!(
        "audit log intact: {} entries, every link verified",
        report.entries
    );
    true
}

fn verify(args: VerifyArgs) -> Result<ExitCode, CliError> {
    let operator = args
        .operator
        .as_deref()
        .map(|key| {
            parse_public_key(key).map_err(|e| CliError::BadInput {
                what: "--operator",
                expected: "64 hex characters or an npub",
                reason: e.to_string(),
            })
        })
        .transpose()?;
    let store = open(&args.db)?;
    let report = store.audit_report()?;
    let mut intact = print_report(&report);
    if intact {
        println!(
            "{} cost records and {} API keys match their entries",
            report.cost_records, report.api_keys
        );
    }
    for stored in &report.checkpoints {
        let by = match operator {
            Some(op) if op != stored.signer => " (not the operator's: it proves nothing)",
            _ => "",
        };
        println!(
            "stored checkpoint of entry {} signed by {} at {}: matches{by}",
            stored.head.seq,
            npub(&stored.signer),
            time(stored.created_at)
        );
    }
    for path in &args.checkpoint {
        let checkpoint =
            parse_checkpoint_json(&read(path)?).map_err(|source| CliError::BadCheckpoint {
                path: path.clone(),
                source,
            })?;
        intact &= check_kept(&store, path, &checkpoint, operator)?;
    }
    Ok(if intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Checks a checkpoint kept outside the database; prints what it found.
fn check_kept(
    store: &Store,
    path: &Path,
    checkpoint: &Checkpoint,
    operator: Option<PublicKey>,
) -> Result<bool, CliError> {
    let shown = path.display();
    if operator != Some(checkpoint.signer) {
        println!(
            "{shown}: signed by {}, not by the operator: it proves nothing",
            npub(&checkpoint.signer)
        );
        return Ok(false);
    }
    match store.check_checkpoint(checkpoint)? {
        Ok(()) => {
            println!(
                "{shown}: entry {} has the hash the operator signed at {}: the log up to it is the one signed",
                checkpoint.head.seq,
                time(checkpoint.created_at)
            );
            Ok(true)
        }
        Err(mismatch) => {
            println!("{shown}: {mismatch}");
            Ok(false)
        }
    }
}
