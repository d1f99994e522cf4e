//! `cargo xtask fuzz --seconds N [TARGET...]`: every fuzz target in `fuzz/` (cargo-fuzz,
//! libFuzzer, `--sanitizer none` so that it runs on the stable toolchain), each for `N` seconds,
//! starting from the committed seeds in `fuzz/seeds/<target>` and keeping what it finds in
//! `target/fuzz-corpus/<target>`. Prints the executions and the coverage of each; fails on the
//! first crash, whose input libFuzzer leaves in `fuzz/artifacts/<target>`.

use std::path::Path;
use std::process::Command;

/// Every target, in the order they run.
pub(crate) const TARGETS: &[&str] = &[
    "chat_request",
    "config",
    "decision_event",
    "key_files",
    "sse",
    "admin",
    "signer_message",
    "dvm_event",
];

/// The cargo-fuzz release known to work here.
const CARGO_FUZZ: &str = "0.13.2";

/// What one run printed at its end.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    pub(crate) executions: u64,
    pub(crate) coverage: u64,
    pub(crate) features: u64,
    pub(crate) corpus: u64,
}

/// Reads libFuzzer's last status line (`#N DONE cov: C ft: F corp: K/...`) and its `Done N runs`.
pub(crate) fn parse_stats(output: &str) -> Stats {
    let mut stats = Stats::default();
    let field = |line: &str, name: &str| -> Option<u64> {
        let rest = line.split(name).nth(1)?;
        rest.split(|c: char| !c.is_ascii_digit())
            .find(|s| !s.is_empty())?
            .parse()
            .ok()
    };
    for line in output.lines() {
        if line.contains(" cov: ") {
            stats.coverage = field(line, " cov: ").unwrap_or(stats.coverage);
            stats.features = field(line, " ft: ").unwrap_or(stats.features);
            stats.corpus = field(line, " corp: ").unwrap_or(stats.corpus);
        }
        if let Some(rest) = line.strip_prefix("Done ") {
            stats.executions = field(&format!(" {rest}"), " ").unwrap_or(stats.executions);
        }
    }
    stats
}

/// Runs the targets named in `args` (all of them if none) for `--seconds` each.
pub(crate) fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let mut seconds = 60u64;
    let mut targets: Vec<&str> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--seconds needs a whole number")?;
            }
            name => {
                let known = TARGETS.iter().find(|t| **t == name);
                targets.push(known.ok_or(format!(
                    "no fuzz target `{name}`; the targets are {}",
                    TARGETS.join(", ")
                ))?);
            }
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    ensure_cargo_fuzz()?;
    let fuzz_dir = root.join("fuzz");
    let status = Command::new("cargo")
        .args(["fuzz", "build", "--sanitizer", "none"])
        .current_dir(&fuzz_dir)
        .status()
        .map_err(|e| format!("could not run cargo fuzz: {e}"))?;
    if !status.success() {
        return Err("the fuzz targets do not build".into());
    }
    let mut table = Vec::new();
    for target in targets {
        table.push((target, run_one(root, target, seconds)?));
    }
    println!("\n| target | seconds | executions | coverage | features | corpus |");
    println!("|---|---|---|---|---|---|");
    for (target, stats) in table {
        println!(
            "| {target} | {seconds} | {} | {} | {} | {} |",
            stats.executions, stats.coverage, stats.features, stats.corpus
        );
    }
    Ok(())
}

fn run_one(root: &Path, target: &str, seconds: u64) -> Result<Stats, String> {
    let corpus = root.join("target/fuzz-corpus").join(target);
    std::fs::create_dir_all(&corpus)
        .map_err(|e| format!("cannot create {}: {e}", corpus.display()))?;
    let seeds = root.join("fuzz/seeds").join(target);
    println!("xtask: fuzzing {target} for {seconds} s");
    let output = Command::new("cargo")
        .args(["fuzz", "run", "--sanitizer", "none", target])
        .arg(&corpus)
        .arg(&seeds)
        .args([
            "--",
            &format!("-max_total_time={seconds}"),
            "-timeout=10",
            "-rss_limit_mb=2048",
            "-print_final_stats=1",
        ])
        .current_dir(root.join("fuzz"))
        .output()
        .map_err(|e| format!("could not run cargo fuzz: {e}"))?;
    let log = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "fuzz target `{target}` failed (its input is in fuzz/artifacts/{target}):\n{}",
            tail.join("\n")
        ));
    }
    Ok(parse_stats(&log))
}

/// Installs cargo-fuzz when it is missing.
fn ensure_cargo_fuzz() -> Result<(), String> {
    let present = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    println!("xtask: installing cargo-fuzz {CARGO_FUZZ}");
    let status = Command::new("cargo")
        .args(["install", "cargo-fuzz", "--locked", "--version", CARGO_FUZZ])
        .status()
        .map_err(|e| format!("could not run cargo install: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("cargo-fuzz could not be installed".into())
    }
}

#[cfg(test)]
mod tests;
