//! How long source files and functions are, found textually in rustfmt-formatted code.
//!
//! A function starts on a line whose trimmed start is `fn name`, after any visibility (`pub`,
//! `pub(crate)`, ...) and qualifiers (`const`, `async`, `unsafe`, `extern "C"`). Its signature
//! ends on the first line that ends with `{`, `}` or `;` (a `;` means a declaration without a
//! body, which is not counted), and its body ends on the first later line that is a lone `}` at the
//! function's own indentation. Inline `#[cfg(test)] mod name { ... }` blocks are skipped.

/// A function found in a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Function {
    /// Its name.
    pub(crate) name: String,
    /// The 1-based line of its `fn`.
    pub(crate) line: usize,
    /// Its length in lines, from the `fn` line to the closing brace, both included.
    pub(crate) lines: usize,
}

/// Every function of `text` with a body, nested ones included, outside inline test modules.
pub(crate) fn functions(text: &str) -> Vec<Function> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if let Some(end) = inline_test_module_end(&lines, i) {
            i = end + 1;
            continue;
        }
        if let Some(name) = fn_name(lines[i].trim_start())
            && let Some(end) = body_end(&lines, i)
        {
            found.push(Function {
                name: name.to_owned(),
                line: i + 1,
                lines: end - i + 1,
            });
        }
        i += 1;
    }
    found
}

/// The name of the function a line declares, if it declares one.
pub(crate) fn fn_name(trimmed: &str) -> Option<&str> {
    let mut rest = trimmed;
    if let Some(after) = rest.strip_prefix("pub") {
        rest = match after.strip_prefix('(') {
            Some(scope) => scope.split_once(')')?.1.trim_start(),
            None if after.starts_with(' ') => after.trim_start(),
            None => return None,
        };
    }
    loop {
        let before = rest;
        for qualifier in ["const ", "async ", "unsafe ", "safe ", "default "] {
            if let Some(after) = rest.strip_prefix(qualifier) {
                rest = after.trim_start();
            }
        }
        if let Some(after) = rest.strip_prefix("extern ") {
            rest = after.trim_start();
            if let Some(abi) = rest.strip_prefix('"') {
                rest = abi.split_once('"')?.1.trim_start();
            }
        }
        if rest == before {
            break;
        }
    }
    let after = rest.strip_prefix("fn ")?.trim_start();
    let after = after.strip_prefix("r#").unwrap_or(after);
    let end = after
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(after.len());
    let name = &after[..end];
    (!name.is_empty()).then_some(name)
}

/// The index of the line that closes the function whose `fn` is on line `start`, or `None` for a
/// declaration without a body.
fn body_end(lines: &[&str], start: usize) -> Option<usize> {
    let indent = indentation(lines[start]);
    for (j, line) in lines.iter().enumerate().skip(start) {
        let code = strip_line_comment(line).trim_end();
        if code.ends_with(';') {
            return None;
        }
        if code.ends_with('}') {
            return Some(j);
        }
        if code.ends_with('{') {
            return closing_brace(lines, j + 1, indent).or(Some(lines.len() - 1));
        }
    }
    None
}

/// The end of an inline `#[cfg(test)] mod name {` block starting at line `i`, if one starts there.
fn inline_test_module_end(lines: &[&str], i: usize) -> Option<usize> {
    if lines[i].trim() != "#[cfg(test)]" {
        return None;
    }
    let module = i + 1;
    let line = lines.get(module)?;
    let trimmed = line.trim();
    let is_module = trimmed.starts_with("mod ")
        || trimmed.starts_with("pub mod ")
        || trimmed.starts_with("pub(crate) mod ")
        || trimmed.starts_with("pub(super) mod ");
    if !is_module || !trimmed.ends_with('{') {
        return None;
    }
    closing_brace(lines, module + 1, indentation(line)).or(Some(lines.len() - 1))
}

/// The first line from `from` on that is a lone `}` indented by `indent`.
fn closing_brace(lines: &[&str], from: usize, indent: usize) -> Option<usize> {
    (from..lines.len()).find(|&k| lines[k].trim() == "}" && indentation(lines[k]) == indent)
}

/// How many spaces (or tabs) a line starts with.
fn indentation(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// `line` without a trailing `//` comment; `//` inside a string literal is kept.
pub(crate) fn strip_line_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
        i += 1;
    }
    line
}
