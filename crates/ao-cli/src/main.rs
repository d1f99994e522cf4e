//! `ao`: the operator's command line of agent-orchestrator.
//!
//! It is a thin shell over the facade crate: every command parses its arguments, calls the
//! library, and prints the result. What it is **not** for: logic of its own.
//!
//! Exit codes: 0 on success, 1 when the command ran and the answer is "no" or an error (a refused
//! decision, a broken audit log, an unreadable file), 2 for a malformed command line.

#![forbid(unsafe_code)]
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command line prints"
)]

mod approvals;
mod audit;
mod demo;
mod error;
mod files;
mod passphrase;
mod relays;
mod secrets;
mod serve;
mod simulated;
mod threshold;

use std::process::ExitCode;

use agent_orchestrator::types::Report;
use clap::{Parser, Subcommand};

pub(crate) use error::CliError;

/// Operate sovereign AI agents: threshold identity, approvals, budgets and routing.
#[derive(Debug, Parser)]
#[command(name = "ao", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a commented starting configuration, an agent key, an admin token and the operator's
    /// key, and create the database.
    Init(serve::InitArgs),
    /// Run the OpenAI-compatible gateway with per-agent keys, budgets and approvals.
    Serve(serve::ServeArgs),
    /// Manage the gateway's per-agent API keys.
    Keys(serve::KeysArgs),
    /// Run the whole spec end to end: key ceremony, signed profile, routing, budgets, approvals,
    /// audit. Uses a simulated backend unless --backend-url names a real one.
    Demo(demo::DemoArgs),
    /// Generate a threshold key: `group.json` and one encrypted `share-<i>.json` per signer, each
    /// under its own passphrase (`AO_PASSPHRASE_<i>`, or asked for in a terminal).
    Keygen(threshold::KeygenArgs),
    /// Sign a 32-byte message or an unsigned Nostr event with at least `threshold` shares, or
    /// with the signer nodes over relays (--relay).
    Sign(threshold::SignArgs),
    /// Check a BIP-340 signature: exit 0 when valid, 1 when not.
    Verify(threshold::VerifyArgs),
    /// Give every signer a new share of the same group key (key rotation; the npub stays). After
    /// an interruption, run it again with the same files: it finishes or rolls back first.
    Refresh(threshold::RefreshArgs),
    /// Rebuild a lost share from `threshold` other shares.
    Repair(threshold::RepairArgs),
    /// Approval requests in a database file: list them, decide them, verify the audit log.
    Approvals(approvals::Args),
    /// The audit log of a database file: verify it against its tables and checkpoints, and
    /// anchor it with a checkpoint signed by the operator.
    Audit(audit::Args),
    /// Run one signer node: one share in memory, signing for coordinators over Nostr relays
    /// within its policy.
    Signer(relays::SignerArgs),
    /// Offer the threshold identity to NIP-46 clients, signed by the signer nodes.
    Bunker(relays::BunkerArgs),
    /// Run a Nostr relay on this machine, in memory, for signer nodes without internet.
    Relay(relays::RelayArgs),
    /// Write a new transport key (for `keygen --relay`, a coordinator or a bunker).
    TransportKey(relays::TransportKeyArgs),
    /// Sign the agent's NIP-SA profile (kind 39200) with the signer nodes or share files.
    Profile(relays::ProfileArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Approvals(args) => approvals::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Init(args) => serve::init(args),
        Command::Serve(args) => serve::serve(args),
        Command::Keys(args) => serve::keys(args),
        Command::Keygen(args) => threshold::keygen(args),
        Command::Sign(args) => threshold::sign(args),
        Command::Verify(args) => threshold::verify(args),
        Command::Refresh(args) => threshold::refresh(args),
        Command::Repair(args) => threshold::repair(args),
        Command::Signer(args) => relays::signer(args),
        Command::Bunker(args) => relays::bunker(args),
        Command::Relay(args) => relays::relay(args),
        Command::TransportKey(args) => relays::transport_key(args),
        Command::Profile(args) => relays::profile(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            // Messages state their own context; the causes are their sources.
            eprintln!("error: {}", Report::new(&error));
            ExitCode::FAILURE
        }
    }
}
