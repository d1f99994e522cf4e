//! Just enough TOML to read our own Cargo manifests, with the standard library only.
//!
//! It understands what `rustfmt`-era Cargo manifests use: `[table]` and `[[array]]` headers
//! (dotted, with quoted parts such as `target.'cfg(unix)'.dependencies`), `key = value` lines with
//! dotted keys, inline tables on one line, arrays over several lines, strings and `#` comments.
//! It does not understand multi-line strings; a manifest that uses one in a dependency table or
//! `[features]` would be misread, and the checks built on it would say so loudly rather than pass.

/// One `key = value` of a manifest, with the table it sits in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The table header's parts, unquoted: `["target", "cfg(unix)", "dependencies"]`.
    pub(crate) table: Vec<String>,
    /// The key's dotted parts, unquoted: `["serde", "workspace"]`.
    pub(crate) key: Vec<String>,
    /// The value as written, comments removed and lines of an array joined.
    pub(crate) value: String,
    /// The 1-based line the entry starts on.
    pub(crate) line: usize,
}

/// Which kind of dependency table a dependency sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DepKind {
    /// `[dependencies]`.
    Normal,
    /// `[dev-dependencies]`.
    Dev,
    /// `[build-dependencies]`.
    Build,
}

/// One dependency of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dependency {
    /// The name it is declared under (the package name, unless renamed with `package = ...`).
    pub(crate) name: String,
    /// The table it is declared in.
    pub(crate) kind: DepKind,
    /// Whether it says `workspace = true`.
    pub(crate) workspace: bool,
    /// The 1-based line it is declared on (its first line, for a `[dependencies.name]` table).
    pub(crate) line: usize,
}

/// Every `key = value` of `text`, in order.
pub(crate) fn entries(text: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut table: Vec<String> = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, raw)) = lines.next() {
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let header = header.trim_start_matches('[');
            let header = header.trim_end().trim_end_matches(']');
            table = split_dotted(header);
            continue;
        }
        let Some((key, value)) = split_once_outside_quotes(line, '=') else {
            continue;
        };
        let key = split_dotted(key.trim());
        if key.is_empty() {
            continue;
        }
        let mut value = value.trim().to_owned();
        // An array may go on over the next lines until its brackets balance.
        while bracket_depth(&value) > 0 {
            let Some((_, more)) = lines.next() else {
                break;
            };
            value.push(' ');
            value.push_str(strip_comment(more).trim());
        }
        entries.push(Entry {
            table: table.clone(),
            key,
            value,
            line: index + 1,
        });
    }
    entries
}

/// The features declared in the `[features]` table, in order, `default` included.
pub(crate) fn features(text: &str) -> Vec<String> {
    entries(text)
        .into_iter()
        .filter(|e| e.table == ["features"] && e.key.len() == 1)
        .map(|e| e.key[0].clone())
        .collect()
}

/// The `members` of the root manifest's `[workspace]`, as written (globs not expanded).
pub(crate) fn workspace_members(text: &str) -> Vec<String> {
    entries(text)
        .into_iter()
        .find(|e| e.table == ["workspace"] && e.key == ["members"])
        .map(|e| string_array(&e.value))
        .unwrap_or_default()
}

/// The `name` in `[package]`, if there is one.
pub(crate) fn package_name(text: &str) -> Option<String> {
    entries(text)
        .into_iter()
        .find(|e| e.table == ["package"] && e.key == ["name"])
        .map(|e| unquote(&e.value))
}

/// Every dependency of `text`: normal, dev and build, target-specific ones included.
///
/// `name.workspace = true`, `name = { workspace = true, ... }` and a `[dependencies.name]` table
/// with `workspace = true` all count as from the workspace; a dependency declared over several
/// dotted keys (`name.workspace = true` then `name.features = [...]`) is one dependency.
pub(crate) fn dependencies(text: &str) -> Vec<Dependency> {
    let mut deps: Vec<Dependency> = Vec::new();
    for entry in entries(text) {
        let (kind, name, key) = match dependency_table(&entry.table) {
            // `[dependencies]`: the key names the dependency.
            Some((kind, None)) => (kind, entry.key[0].clone(), &entry.key[1..]),
            // `[dependencies.name]`: the table names it, the key is one of its settings.
            Some((kind, Some(name))) => (kind, name, &entry.key[..]),
            None => continue,
        };
        let workspace = match key {
            [] => inline_table(&entry.value)
                .iter()
                .any(|(k, v)| k == "workspace" && v == "true"),
            [setting] => setting == "workspace" && entry.value == "true",
            _ => false,
        };
        match deps.iter_mut().find(|d| d.name == name && d.kind == kind) {
            Some(dep) => dep.workspace |= workspace,
            None => deps.push(Dependency {
                name,
                kind,
                workspace,
                line: entry.line,
            }),
        }
    }
    deps
}

/// Whether `table` is a dependency table, which kind, and the dependency it names if it is a
/// `[dependencies.name]` table.
fn dependency_table(table: &[String]) -> Option<(DepKind, Option<String>)> {
    let table = match table {
        [target, _, rest @ ..] if target == "target" => rest,
        _ => table,
    };
    let kind = match table.first().map(String::as_str) {
        Some("dependencies") => DepKind::Normal,
        Some("dev-dependencies" | "dev_dependencies") => DepKind::Dev,
        Some("build-dependencies" | "build_dependencies") => DepKind::Build,
        _ => return None,
    };
    match table {
        [_] => Some((kind, None)),
        [_, name] => Some((kind, Some(name.clone()))),
        _ => None,
    }
}

/// The `key = value` pairs of a one-line inline table `{ a = 1, b = "x" }`; empty for anything
/// else.
pub(crate) fn inline_table(value: &str) -> Vec<(String, String)> {
    let Some(inner) = value
        .trim()
        .strip_prefix('{')
        .and_then(|v| v.strip_suffix('}'))
    else {
        return Vec::new();
    };
    split_top_level(inner, ',')
        .into_iter()
        .filter_map(|pair| split_once_outside_quotes(pair, '='))
        .map(|(k, v)| (unquote(k.trim()), v.trim().to_owned()))
        .collect()
}

/// The strings of an array `["a", "b"]`; other elements are skipped.
pub(crate) fn string_array(value: &str) -> Vec<String> {
    let Some(inner) = value
        .trim()
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
    else {
        return Vec::new();
    };
    split_top_level(inner, ',')
        .into_iter()
        .map(str::trim)
        .filter(|s| s.starts_with('"') || s.starts_with('\''))
        .map(unquote)
        .collect()
}

/// `text` without a `#` comment, `#` inside strings kept.
fn strip_comment(text: &str) -> &str {
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some('"'), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(q), c) if c == q && !escaped => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => return &text[..i],
            _ => {}
        }
        escaped = false;
    }
    text
}

/// Splits `text` at every `sep` outside quotes, brackets and braces.
fn split_top_level(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut quote = None;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            (None, c) if c == sep && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    let last = &text[start..];
    if !last.trim().is_empty() {
        parts.push(last);
    }
    parts
}

/// `text` split once at the first `sep` outside quotes.
fn split_once_outside_quotes(text: &str, sep: char) -> Option<(&str, &str)> {
    let first = split_top_level(text, sep).into_iter().next()?;
    let rest = text.get(first.len() + sep.len_utf8()..)?;
    Some((first, rest))
}

/// A dotted key or header split into its parts, each trimmed and unquoted.
pub(crate) fn split_dotted(text: &str) -> Vec<String> {
    split_top_level(text, '.')
        .into_iter()
        .map(|part| unquote(part.trim()))
        .collect()
}

/// How many `[` are still open at the end of `value`, outside strings.
fn bracket_depth(value: &str) -> usize {
    let mut depth = 0usize;
    let mut quote = None;
    for c in value.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    depth
}

/// `text` without one pair of surrounding quotes (no escapes are decoded).
fn unquote(text: &str) -> String {
    let text = text.trim();
    for q in ['"', '\''] {
        if text.len() >= 2
            && let Some(inner) = text.strip_prefix(q).and_then(|t| t.strip_suffix(q))
        {
            return inner.to_owned();
        }
    }
    text.to_owned()
}

#[cfg(test)]
mod tests;
