use std::path::PathBuf;

use agent_orchestrator::approvals::{ApprovalError, ApprovalStoreError};
use agent_orchestrator::audit::{AuditError, BrokenLink, CheckpointError};
use agent_orchestrator::budget::BudgetError;
use agent_orchestrator::orchestrator::{ConfigError, OrchestratorError, SetupError};
use agent_orchestrator::signer::SignerError;
use agent_orchestrator::store::StoreError;
use agent_orchestrator::threshold::ThresholdError;
use agent_orchestrator::types::ClockError;

/// Why a command failed.
///
/// A message states what failed and what to do; its cause is its source. `main` prints the whole
/// chain with `Report`, each cause once.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The database refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The approval store refused.
    #[error(transparent)]
    ApprovalStore(#[from] ApprovalStoreError),
    /// An approval decision was refused.
    #[error(transparent)]
    Approval(#[from] ApprovalError),
    /// The audit log could not be read or written.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The time could not be read.
    #[error(transparent)]
    Clock(#[from] ClockError),
    /// A threshold operation (key generation, signing, a share file) failed.
    #[error(transparent)]
    Threshold(#[from] ThresholdError),
    /// A signer node, coordinator, ceremony or bunker over relays failed.
    #[error(transparent)]
    Signer(#[from] SignerError),
    /// A file or directory could not be written.
    #[error("cannot write `{}`", path.display())]
    WriteFile {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// Key material would be overwritten.
    #[error("`{}` already exists, and key material is never overwritten; choose another path", .0.display())]
    Exists(PathBuf),
    /// A refresh stopped before its commit and was rolled back: the files are as they were.
    #[error("the refresh was not done; every share file and the group file are as they were")]
    RefreshNotDone(#[source] Box<CliError>),
    /// A refresh committed its new files but stopped before switching every one.
    #[error(
        "the refresh of `{}` is committed but not every file is switched; `ao sign` already uses the new shares, and `ao refresh` run again with the same files finishes it",
        group.display()
    )]
    RefreshUnfinished {
        /// The group file.
        group: PathBuf,
        /// Why the switch stopped.
        #[source]
        source: Box<CliError>,
    },
    /// A refresh switched every file but could not remove the previous generation.
    #[error(
        "the refresh is done, but the previous generation could not be removed, and old shares still sign together: run `ao refresh` again with the same files to remove the `.prev` files"
    )]
    PreviousKept(#[source] Box<CliError>),
    /// A committed refresh is waiting to be finished.
    #[error(
        "a refresh of `{}` was interrupted after it was committed; run `ao refresh` again with the same --group and --share files to finish it first",
        group.display()
    )]
    RefreshPending {
        /// The group file.
        group: PathBuf,
    },
    /// The share files given to finish a refresh are not those of the interrupted run.
    #[error(
        "the share files given are not those of the interrupted refresh of `{}` ({reason}); run `ao refresh` again with the same --share files as the interrupted run",
        group.display()
    )]
    RefreshFilesMismatch {
        /// The group file.
        group: PathBuf,
        /// What does not match.
        reason: String,
    },
    /// A group file left by an interrupted refresh is of another group key.
    #[error(
        "`{}` is of another group key than the group file beside it; it is not from a refresh of this group, move it away",
        path.display()
    )]
    LeftoverOtherKey {
        /// The file.
        path: PathBuf,
    },
    /// Files written by refresh or repair did not pass their check; they were not put in place.
    #[error("the {what} did not pass their check once written, so they were not used")]
    NotChecked {
        /// What was written: "new shares", "repaired share".
        what: &'static str,
        /// What the check found.
        #[source]
        source: Box<CliError>,
    },
    /// A share to open has no passphrase in the environment, and there is no terminal to ask.
    #[error(
        "no passphrase for share {index}: set AO_PASSPHRASE_{index} (or AO_PASSPHRASE), or run in a terminal to be asked"
    )]
    NoPassphrase {
        /// The share's index.
        index: u16,
    },
    /// A new share has no passphrase of its own in the environment, and there is no terminal.
    #[error(
        "no passphrase for the new share {index}: set AO_PASSPHRASE_{index}, one variable per share, or run in a terminal to be asked for each"
    )]
    NoNewPassphrase {
        /// The share's index.
        index: u16,
    },
    /// `--same-passphrase-for-all` without `AO_PASSPHRASE` or a terminal.
    #[error(
        "no passphrase: --same-passphrase-for-all reads AO_PASSPHRASE, or asks once in a terminal"
    )]
    NoCommonPassphrase,
    /// `AO_PASSPHRASE` would have encrypted several new shares under one passphrase.
    #[error(
        "AO_PASSPHRASE would encrypt every share under one passphrase, and whoever knows it could sign alone: set AO_PASSPHRASE_1 .. AO_PASSPHRASE_{total}, one per share, or pass --same-passphrase-for-all to accept one passphrase for all"
    )]
    OnePassphraseForAll {
        /// How many shares.
        total: usize,
    },
    /// Two new shares were given the same passphrase.
    #[error(
        "shares {first} and {second} were given the same passphrase, and whoever knows it could open both: give each share its own, or pass --same-passphrase-for-all to accept that"
    )]
    SamePassphrase {
        /// The first share with it.
        first: u16,
        /// The second.
        second: u16,
    },
    /// `--same-passphrase-for-all` given together with a share's own passphrase variable.
    #[error(
        "--same-passphrase-for-all takes one passphrase from AO_PASSPHRASE, but {var} is set: unset it, or drop the flag to give each share its own"
    )]
    PerShareWithSameForAll {
        /// The variable that is set.
        var: String,
    },
    /// A passphrase is empty.
    #[error("{from} is empty; a share needs a passphrase")]
    EmptyPassphrase {
        /// The variable, or "the passphrase typed".
        from: String,
    },
    /// A passphrase variable does not hold UTF-8.
    #[error("{var} is not valid UTF-8; use a UTF-8 passphrase")]
    PassphraseNotUnicode {
        /// The variable.
        var: String,
    },
    /// The passphrase and its confirmation differ.
    #[error("the passphrases do not match")]
    PassphraseMismatch,
    /// The terminal could not be read.
    #[error(
        "cannot read the passphrase from the terminal; set AO_PASSPHRASE_<i> for share i instead"
    )]
    Prompt {
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A command-line value is not in the expected form.
    #[error("{what} must be {expected}: {reason}")]
    BadInput {
        /// The option.
        what: &'static str,
        /// The form it must have.
        expected: &'static str,
        /// What is wrong with the value given.
        reason: String,
    },
    /// The file given to `ao sign --event` does not hold an unsigned Nostr event.
    #[error("`{}` is not an unsigned Nostr event", path.display())]
    BadEvent {
        /// The file.
        path: PathBuf,
        /// What the event parser said.
        #[source]
        source: nostr::event::Error,
    },
    /// A file could not be read.
    #[error("cannot read `{}`", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A key file holds no valid secret key. Nothing of the file is kept or printed: it may hold a
    /// secret.
    #[error("`{}` holds no valid secret key (expected an nsec or 64 hex characters)", path.display())]
    BadKeyFile {
        /// The file.
        path: PathBuf,
    },
    /// The configuration file does not parse or does not hold.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `ao serve` found no configuration file.
    #[error(
        "no configuration at `{}`; run `ao init` first (or `ao serve --simulated`, which does)",
        .0.display()
    )]
    NoConfig(PathBuf),
    /// The async runtime could not be started.
    #[error("cannot start the async runtime; the system may be short of threads or memory")]
    Runtime(#[source] std::io::Error),
    /// The simulated backend could not be started.
    #[error("cannot start the simulated backend on loopback")]
    Simulator(#[source] std::io::Error),
    /// The orchestrator could not be set up from the configuration: its data directory, its
    /// database, a backend or an agent. Transparent: the orchestrator's message names the part.
    #[error(transparent)]
    Start(SetupError),
    /// The gateway cannot listen on its address.
    #[error("cannot listen on `{addr}`; choose a free address with --listen or `server.listen`")]
    Bind {
        /// The address.
        addr: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The gateway stopped serving because of an error.
    #[error("the gateway stopped serving")]
    Serve(#[source] std::io::Error),
    /// `ao keys create` names an agent the configuration does not have.
    #[error("agent `{agent}` is not in `{}`; add it under [agents] first", config.display())]
    UnknownAgent {
        /// The agent named.
        agent: String,
        /// The configuration file.
        config: PathBuf,
    },
    /// `ao keys revoke` names a key that does not exist or is already revoked.
    #[error("no live key `{0}`; list the keys and their state with `ao keys list`")]
    NoLiveKey(String),
    /// `ao demo` stopped.
    #[error(transparent)]
    Demo(#[from] DemoError),
    /// `ao approvals` names a request the database does not have.
    #[error("no approval request `{0}` in the database")]
    UnknownRequest(String),
    /// A fresh key could not be written in bech32 (never expected).
    #[error("a fresh key could not be encoded as bech32; this is a bug, please report it")]
    KeyEncoding,
    /// A checkpoint could not be made.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A checkpoint file holds no valid checkpoint event.
    #[error("`{}` is not a valid audit checkpoint", path.display())]
    BadCheckpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: CheckpointError,
    },
    /// `ao audit checkpoint` was asked to sign a log that does not verify.
    #[error(
        "the audit log does not verify ({findings} finding(s), printed above); a checkpoint would vouch for it, so none was signed"
    )]
    LogNotIntact {
        /// How many findings.
        findings: usize,
    },
    /// `ao approvals --db` names a file that does not exist.
    #[error("the database `{}` does not exist; give the path of an existing file with --db", .0.display())]
    NoDatabase(PathBuf),
}

/// Why `ao demo` stopped: a step of the spec that did not go as the demo shows it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DemoError {
    /// The temporary directory for the demo's database could not be created.
    #[error("cannot create a temporary directory for the demo's database; check TMPDIR")]
    TempDir(#[source] std::io::Error),
    /// The threshold-signed profile does not pass nostr's own check.
    #[error(
        "the threshold-signed agent profile does not verify with nostr's own check; this is a bug, please report it"
    )]
    ProfileInvalid(#[source] nostr::event::Error),
    /// A call the demo makes failed.
    #[error("the demo's {call} call failed; with --backend-url, check that the server answers")]
    Call {
        /// Which call.
        call: &'static str,
        /// Why it failed.
        #[source]
        source: OrchestratorError,
    },
    /// The costly call was answered without waiting for an approval.
    #[error(
        "the costly call was answered without an approval, which the agent's approval threshold should have required"
    )]
    NotHeldForApproval,
    /// The agent the demo configured is not in the orchestrator.
    #[error(
        "the demo's agent `researcher` is missing from the orchestrator; this is a bug, please report it"
    )]
    AgentMissing,
    /// An unsigned approval was accepted where only the operator's signed one counts.
    #[error(
        "the agent approved its own request without a signature; approvals are not enforced, this is a bug, please report it"
    )]
    SelfApproved,
    /// The budget tracker could not count what is still reserved.
    #[error("cannot count the outstanding budget reservations")]
    Budget(#[source] BudgetError),
    /// The audit log written by the demo does not verify.
    #[error("the demo's audit log does not verify; this is a bug, please report it")]
    AuditBroken(#[source] BrokenLink),
}
