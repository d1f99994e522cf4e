//! The project's tasks, run as `cargo xtask <task>`.
//!
//! - `ci`: everything CI checks, in order: tidy, formatting, clippy with warnings denied, the
//!   facade with each of its features alone, every test (unit, integration, doc, cross-crate),
//!   the docs with broken intra-doc links denied, and a short pass of every fuzz target.
//! - `tidy`: the fast checks of the workspace's shape (see `tidy.rs`): the architecture doc names
//!   every crate, layering, dependencies from `[workspace.dependencies]`, file and function sizes.
//! - `test`: every test of the workspace.
//! - `integration`: the cross-crate suites in `tests/`.
//! - `soak`: a real `ao serve` under mixed traffic for minutes (see `crates/ao-cli/examples/soak.rs`).
//! - `fuzz`: every fuzz target in `fuzz/` for a given time (see `fuzz.rs`); CI runs a short pass.
//!
//! It depends on nothing but the standard library, so it builds in seconds on a fresh machine.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a task runner reports on the terminal"
)]

mod fuzz;
mod manifest;
mod tidy;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// The facade, whose every feature CI checks alone.
const FACADE_MANIFEST: &str = "crates/agent-orchestrator/Cargo.toml";

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  ci           tidy, formatting, clippy (-D warnings), feature checks, every test, docs
  tidy         architecture doc, layering, workspace dependencies, file and function sizes
  test         every test of the workspace (unit, integration, doc, cross-crate)
  integration  the cross-crate suites in tests/
  soak --minutes M [--rate R]
               a real `ao serve` (release) under mixed traffic at R requests per second
               (default 1000) for M minutes: memory, descriptors, latency per minute, 5xx
  fuzz [--seconds N] [TARGET...]
               every fuzz target (cargo-fuzz, libFuzzer) for N seconds each (default 60),
               from the seeds in fuzz/seeds; installs cargo-fuzz if it is missing
  bench NAME   a benchmark, with its ratios against the baseline in the same run:
               tracker (budgets), ledger (SQLite), hooks, signing (FROST), gateway,
               signing-remote (2-of-3 over a loopback relay, beside local signing)
               `bench gateway --litellm` also installs the LiteLLM proxy in target/bench-venv
               and compares with it; `bench gateway --postgres [--gateways N]` adds N
               gateways (default 2) on one PostgreSQL database (AO_TEST_DATABASE_URL),
               beside the one on SQLite";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("tidy") => tidy::run(&workspace_root()),
        Some("test") => test(),
        Some("integration") => integration(),
        Some("bench") => bench(&args[1..]),
        Some("fuzz") => fuzz::run(&workspace_root(), &args[1..]),
        Some("soak") => soak(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown task `{other}`\n\n{USAGE}")),
        None => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn ci() -> Result<(), String> {
    let started = Instant::now();
    tidy::run(&workspace_root())?;
    cargo(&["fmt", "--all", "--", "--check"], &[])?;
    cargo(
        &[
            "fmt",
            "--manifest-path",
            "fuzz/Cargo.toml",
            "--all",
            "--",
            "--check",
        ],
        &[],
    )?;
    cargo(
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    // The facade must build with each part alone, as a user who wants only that part would use it.
    for features in facade_feature_sets()? {
        cargo(
            &[
                "clippy",
                "--package",
                "agent-orchestrator",
                "--no-default-features",
                "--features",
                &features,
                "--locked",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        )?;
    }
    test()?;
    cargo(
        &["doc", "--workspace", "--no-deps", "--locked"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    short_soak()?;
    // A short pass of every fuzz target; `cargo xtask fuzz --seconds 600` is the long one.
    fuzz::run(
        &workspace_root(),
        &["--seconds".to_owned(), "10".to_owned()],
    )?;
    println!("xtask ci: all checks passed in {:.0?}", started.elapsed());
    Ok(())
}

/// No feature, then each feature of the facade's `[features]` alone (`default` aside), read from
/// its manifest so that a new feature is checked without anyone remembering to list it.
fn facade_feature_sets() -> Result<Vec<String>, String> {
    let path = workspace_root().join(FACADE_MANIFEST);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let features: Vec<String> = manifest::features(&text)
        .into_iter()
        .filter(|f| f != "default")
        .collect();
    if features.is_empty() {
        return Err(format!("{FACADE_MANIFEST}: found no [features] to check"));
    }
    Ok(std::iter::once(String::new()).chain(features).collect())
}

/// The workspace's root folder, whatever folder `cargo xtask` was run from.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A short soak: the debug build, a lower rate, 20 seconds, checking only what so short a run
/// can show. `cargo xtask soak --minutes 10` is the long one.
fn short_soak() -> Result<(), String> {
    cargo(&["build", "--package", "ao-cli", "--locked"], &[])?;
    cargo(
        &[
            "run",
            "--package",
            "ao-cli",
            "--example",
            "soak",
            "--locked",
            "--",
            "--ao",
            "target/debug/ao",
            "--seconds",
            "20",
            "--window",
            "5",
            "--rate",
            "200",
            // Memory growth is not judged: 20 seconds cannot tell it from warming up.
            "--short",
        ],
        &[],
    )?;
    Ok(())
}

/// `soak --minutes M [--rate R]`: the soak example in release against a release `ao`.
fn soak(args: &[String]) -> Result<(), String> {
    let mut minutes = "10".to_owned();
    let mut rate = "1000".to_owned();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let value = args.next().ok_or(format!("{arg} needs a value"))?.clone();
        match arg.as_str() {
            "--minutes" => minutes = value,
            "--rate" => rate = value,
            other => return Err(format!("unknown argument `{other}` to soak")),
        }
    }
    let seconds = minutes
        .parse::<u64>()
        .map_err(|_| "--minutes needs a whole number")?
        * 60;
    cargo(
        &["build", "--release", "--package", "ao-cli", "--locked"],
        &[],
    )?;
    cargo(
        &[
            "run",
            "--release",
            "--package",
            "ao-cli",
            "--example",
            "soak",
            "--locked",
            "--",
            "--ao",
            "target/release/ao",
            "--seconds",
            &seconds.to_string(),
            "--rate",
            &rate,
        ],
        &[],
    )
}

fn test() -> Result<(), String> {
    cargo(&["test", "--workspace", "--locked"], &[])
}

fn integration() -> Result<(), String> {
    cargo(&["test", "--package", "ao-tests", "--locked"], &[])
}

fn bench(args: &[String]) -> Result<(), String> {
    let (package, target) = match args.first().map(String::as_str) {
        Some("tracker") => ("ao-budget", "tracker"),
        Some("ledger") => ("ao-store", "ledger"),
        Some("hooks") => ("ao-hooks", "dispatch"),
        Some("signing") => ("ao-threshold", "signing"),
        Some("signing-remote") => ("ao-signer", "signing_remote"),
        Some("gateway") => ("ao-gateway", "gateway"),
        _ => return Err(format!("which benchmark?\n\n{USAGE}")),
    };
    let mut envs: Vec<(&str, String)> = Vec::new();
    if args.iter().any(|a| a == "--litellm") {
        envs.push(("AO_BENCH_LITELLM", litellm()?));
    }
    if args.iter().any(|a| a == "--postgres") {
        envs.push(("AO_BENCH_POSTGRES", "1".to_owned()));
    }
    if let Some(n) = args
        .iter()
        .position(|a| a == "--gateways")
        .and_then(|i| args.get(i + 1))
    {
        n.parse::<usize>()
            .map_err(|_| "--gateways needs a whole number")?;
        envs.push(("AO_BENCH_GATEWAYS", n.clone()));
    }
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    cargo(&["bench", "--package", package, "--bench", target], &envs)
}

/// Installs the LiteLLM proxy into `target/bench-venv` (once) and returns its executable.
fn litellm() -> Result<String, String> {
    let venv = std::path::Path::new("target/bench-venv");
    let bin = venv.join("bin/litellm");
    if !bin.exists() {
        run("python3", &["-m", "venv", &venv.to_string_lossy()])?;
        let pip = venv.join("bin/pip");
        run(
            &pip.to_string_lossy(),
            &["install", "--quiet", "litellm[proxy]"],
        )?;
    }
    std::fs::canonicalize(&bin)
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|e| format!("litellm was not installed: {e}"))
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    println!("xtask: {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .status()
        .map_err(|e| format!("could not run `{program}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

/// Runs `cargo` with `args` and extra environment variables, failing when it fails.
fn cargo(args: &[&str], envs: &[(&str, &str)]) -> Result<(), String> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    println!("xtask: cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .envs(envs.iter().copied())
        .status()
        .map_err(|e| format!("could not run `{cargo}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}
