//! `ao`: the operator's command line of agent-orchestrator.
//!
//! It is a thin shell over the facade crate: every command parses its arguments, calls the
//! library, and prints the result. What it is **not** for: logic of its own.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

/// Operate sovereign AI agents: threshold identity, approvals, budgets and routing.
#[derive(Debug, Parser)]
#[command(name = "ao", version, about)]
struct Cli {}

fn main() -> ExitCode {
    let _cli = Cli::parse();
    ExitCode::SUCCESS
}
