//! `cargo xtask tidy`: the checks that keep the workspace honest, fast enough to run first.
//!
//! - Every crate under `crates/` has a code map entry (`crates/<name>`) in docs/ARCHITECTURE.md.
//!   The path, not the bare name: `agent-orchestrator` is also the project's name, so the bare
//!   name would always be found.
//! - Layering: each crate sits on a layer of [`LAYERS`], and its normal and build dependencies
//!   point to lower layers only. Dev-dependencies point down too, with two exceptions for test
//!   support: any crate's tests may use a crate of [`TEST_SUPPORT`] (ao-sim, the simulated
//!   backend), and a crate may dev-depend on itself to turn on features for its own tests.
//! - Every dependency of every workspace member (normal, dev, build, per target) is taken from
//!   `[workspace.dependencies]` with `workspace = true`, so versions and default features are
//!   decided in one place.
//! - Size: no source file under `crates/*/src` or `xtask/src` is over [`MAX_FILE_LINES`] lines and
//!   no function there over [`MAX_FN_LINES`]. Tests (`tests.rs`, `tests/`), benches, examples and
//!   [`SIZE_EXEMPT`] files are not counted; inline `#[cfg(test)] mod` blocks are skipped when
//!   looking for functions, but count in their file's length (unit tests belong in `tests.rs`).

mod size;

use std::fs;
use std::path::{Path, PathBuf};

use crate::manifest::{self, DepKind, Dependency};

/// The crates from the bottom layer up. A crate may depend on crates of lower layers only; crates
/// of one layer do not depend on each other. A new crate must be placed here before tidy passes.
pub(crate) const LAYERS: &[&[&str]] = &[
    &["ao-types"],
    &["ao-identity"],
    &["ao-threshold", "ao-routing", "ao-budget", "ao-audit"],
    &["ao-approvals", "ao-signer"],
    &["ao-hooks", "ao-dvm"],
    &["ao-store"],
    &["ao-sim"],
    &["ao-orchestrator"],
    &["ao-gateway"],
    &["agent-orchestrator"],
    &["ao-cli"],
];

/// Crates any crate's tests may use, whatever its layer.
pub(crate) const TEST_SUPPORT: &[&str] = &["ao-sim"];

/// The most lines a source file may have.
pub(crate) const MAX_FILE_LINES: usize = 600;

/// The most lines a function may have, its signature and closing brace included.
pub(crate) const MAX_FN_LINES: usize = 80;

/// Source files the size limits do not apply to: the demo is a script told in one place.
pub(crate) const SIZE_EXEMPT: &[&str] = &["crates/ao-cli/src/demo.rs"];

/// Runs every check under `root` and prints every problem; fails if there is one.
pub(crate) fn run(root: &Path) -> Result<(), String> {
    let crates = crate_dirs(root)?;
    let mut problems = Vec::new();
    let doc = read(&root.join("docs/ARCHITECTURE.md"))?;
    for name in unmapped_crates(&doc, &crates) {
        problems.push(format!(
            "docs/ARCHITECTURE.md: no code map entry names `crates/{name}`"
        ));
    }
    for name in &crates {
        let path = format!("crates/{name}/Cargo.toml");
        let text = read(&root.join(&path))?;
        if manifest::package_name(&text).as_deref() != Some(name.as_str()) {
            problems.push(format!(
                "{path}: the package must be named `{name}`, as its folder"
            ));
        }
        let deps = manifest::dependencies(&text);
        for (line, message) in layer_violations(name, &deps, &crates) {
            problems.push(format!("{path}:{line}: {message}"));
        }
    }
    problems.extend(stale_layers(&crates));
    for path in member_manifests(root)? {
        let text = read(&root.join(&path))?;
        for dep in manifest::dependencies(&text)
            .iter()
            .filter(|d| !d.workspace)
        {
            problems.push(format!(
                "{path}:{}: `{}` is not from [workspace.dependencies]: declare it there and \
                 write `{}.workspace = true`",
                dep.line, dep.name, dep.name
            ));
        }
    }
    for path in size_checked_files(root)? {
        let text = read(&root.join(&path))?;
        problems.extend(size_violations(&path, &text));
    }
    if problems.is_empty() {
        println!("xtask tidy: ok");
        return Ok(());
    }
    for problem in &problems {
        println!("tidy: {problem}");
    }
    Err(format!("tidy found {} problems", problems.len()))
}

/// The crates of `crates` that `doc` has no `crates/<name>` entry for.
pub(crate) fn unmapped_crates<'a>(doc: &str, crates: &'a [String]) -> Vec<&'a str> {
    crates
        .iter()
        .filter(|name| !mentions_path(doc, &format!("crates/{name}")))
        .map(String::as_str)
        .collect()
}

/// Whether `doc` holds `path` followed by something that cannot continue a crate name, so that
/// `crates/ao-store` is not taken for `crates/ao-store-extra`.
fn mentions_path(doc: &str, path: &str) -> bool {
    doc.match_indices(path).any(|(i, _)| {
        doc[i + path.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '-' || c == '_'))
    })
}

/// The layer of a crate in [`LAYERS`], 0 at the bottom.
pub(crate) fn layer_of(name: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&name))
}

/// The dependencies of crate `name` that break the layering, as (line, message). Only
/// dependencies on workspace crates (`crates`) are looked at.
pub(crate) fn layer_violations(
    name: &str,
    deps: &[Dependency],
    crates: &[String],
) -> Vec<(usize, String)> {
    let Some(layer) = layer_of(name) else {
        return vec![(
            1,
            format!("`{name}` is on no layer: add it to LAYERS in xtask/src/tidy.rs"),
        )];
    };
    let mut found = Vec::new();
    for dep in deps.iter().filter(|d| crates.contains(&d.name)) {
        let test_support = dep.kind == DepKind::Dev
            && (dep.name == name || TEST_SUPPORT.contains(&dep.name.as_str()));
        match layer_of(&dep.name) {
            _ if test_support => {}
            Some(below) if below < layer => {}
            Some(_) => found.push((
                dep.line,
                format!(
                    "`{name}` depends on `{}`, which is not on a lower layer (see LAYERS in \
                     xtask/src/tidy.rs)",
                    dep.name
                ),
            )),
            // The crate itself is reported as missing from LAYERS.
            None => {}
        }
    }
    found
}

/// Crates named in [`LAYERS`] that are no longer in `crates/`.
fn stale_layers(crates: &[String]) -> Vec<String> {
    LAYERS
        .iter()
        .flat_map(|layer| layer.iter())
        .filter(|name| !crates.iter().any(|c| c == *name))
        .map(|name| {
            format!("xtask/src/tidy.rs: LAYERS names `{name}`, which is not a crate in crates/")
        })
        .collect()
}

/// The problems of one source file with its size limits.
pub(crate) fn size_violations(path: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let lines = text.lines().count();
    if lines > MAX_FILE_LINES {
        problems.push(format!(
            "{path}: the file is {lines} lines, over the limit of {MAX_FILE_LINES}: split it by \
             concern"
        ));
    }
    for f in size::functions(text) {
        if f.lines > MAX_FN_LINES {
            problems.push(format!(
                "{path}:{}: fn `{}` is {} lines, over the limit of {MAX_FN_LINES}",
                f.line, f.name, f.lines
            ));
        }
    }
    problems
}

/// Whether the size limits apply to the source file at `path` (relative, `/`-separated).
pub(crate) fn is_size_checked(path: &str) -> bool {
    let excluded_dir = path
        .split('/')
        .any(|part| matches!(part, "tests" | "benches" | "examples"));
    path.ends_with(".rs")
        && !excluded_dir
        && !path.ends_with("/tests.rs")
        && !SIZE_EXEMPT.contains(&path)
}

/// The names of the folders under `crates/` that hold a `Cargo.toml`, sorted.
fn crate_dirs(root: &Path) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = list_dir(&root.join("crates"))?
        .into_iter()
        .filter(|p| p.join("Cargo.toml").is_file())
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    Ok(names)
}

/// The manifests of the workspace's members, relative to `root`: `members` of the root manifest,
/// with `dir/*` expanded to the folders of `dir` that hold a `Cargo.toml`.
fn member_manifests(root: &Path) -> Result<Vec<String>, String> {
    let members = manifest::workspace_members(&read(&root.join("Cargo.toml"))?);
    if members.is_empty() {
        return Err("Cargo.toml: found no [workspace] members".to_owned());
    }
    let mut manifests = Vec::new();
    for member in members {
        let dirs = match member.strip_suffix("/*") {
            Some(parent) => list_dir(&root.join(parent))?
                .into_iter()
                .filter_map(|p| {
                    p.file_name()
                        .map(|n| format!("{parent}/{}", n.to_string_lossy()))
                })
                .collect(),
            None => vec![member],
        };
        for dir in dirs {
            if root.join(&dir).join("Cargo.toml").is_file() {
                manifests.push(format!("{dir}/Cargo.toml"));
            }
        }
    }
    manifests.sort();
    Ok(manifests)
}

/// The source files the size limits apply to, relative to `root`, sorted.
fn size_checked_files(root: &Path) -> Result<Vec<String>, String> {
    let mut dirs: Vec<PathBuf> = crate_dirs(root)?
        .iter()
        .map(|name| root.join("crates").join(name).join("src"))
        .collect();
    dirs.push(root.join("xtask/src"));
    let mut files = Vec::new();
    while let Some(dir) = dirs.pop() {
        for path in list_dir(&dir)? {
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let relative = path
                .strip_prefix(root)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let relative = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            if is_size_checked(&relative) {
                files.push(relative);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The entries of a folder.
fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    entries
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

#[cfg(test)]
mod tests;
