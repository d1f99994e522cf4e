//! The `ao` binary, run as an operator runs it, against real files.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]
#![allow(missing_docs, reason = "test code")]

mod approvals;
mod audit;
mod cluster;
mod crash;
mod demo;
mod hostile;
mod outage;
mod relays;
mod serve;
mod threshold;

use std::path::Path;
use std::process::{Command, Output};

/// Runs `ao` with `args` and extra environment variables.
pub(crate) fn ao(args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ao"))
        .args(args)
        .env_remove("AO_DB")
        .env_remove("AO_PASSPHRASE")
        .envs(envs.iter().copied())
        .output()
        .unwrap()
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub(crate) fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}
