use super::size::{Function, fn_name, functions, strip_line_comment};
use super::*;

fn function(name: &str, line: usize, lines: usize) -> Function {
    Function {
        name: name.to_owned(),
        line,
        lines,
    }
}

fn names(crates: &[&str]) -> Vec<String> {
    crates.iter().map(|c| (*c).to_owned()).collect()
}

fn dep(name: &str, kind: DepKind, line: usize) -> Dependency {
    Dependency {
        name: name.to_owned(),
        kind,
        workspace: true,
        line,
    }
}

#[test]
fn fn_names_are_found_after_visibility_and_qualifiers() {
    for (line, name) in [
        ("fn plain() {", Some("plain")),
        ("pub fn public<T>(x: T) -> T {", Some("public")),
        ("pub(crate) fn scoped(&self) {", Some("scoped")),
        ("pub(in crate::a) async fn deep() {", Some("deep")),
        ("pub const fn constant() -> u8 {", Some("constant")),
        ("async unsafe fn both() {", Some("both")),
        (r#"pub extern "C" fn ffi() {"#, Some("ffi")),
        ("fn r#match() {", Some("match")),
        ("let f = fn_pointer;", None),
        ("public fn not_a_visibility() {", None),
        ("const MAX: fn() = f;", None),
        ("async move {", None),
        ("// fn commented() {", None),
        ("fn $name() {", None),
    ] {
        assert_eq!(fn_name(line), name, "{line}");
    }
}

#[test]
fn function_lengths_run_from_fn_to_the_brace_at_its_indentation() {
    let text = "\
fn one_line() -> u8 { 1 }

fn empty() {}

pub fn block(x: u8) -> u8 {
    if x > 1 {
        x
    } else {
        0
    }
}

impl A {
    pub(crate) fn method<T>(
        &self,
        t: T,
    ) -> T
    where
        T: Clone,
    {
        t
    }
}
";
    assert_eq!(
        functions(text),
        [
            function("one_line", 1, 1),
            function("empty", 3, 1),
            function("block", 5, 7),
            function("method", 14, 9),
        ]
    );
}

#[test]
fn declarations_without_a_body_are_not_functions() {
    let text = "\
trait T {
    fn short(&self) -> u8;
    fn long(
        &self,
        x: [u8; 32],
    ) -> u8;
    fn provided(&self) -> u8 {
        2
    }
}
";
    assert_eq!(functions(text), [function("provided", 7, 3)]);
}

#[test]
fn nested_functions_are_counted_on_their_own_and_in_their_parent() {
    let text = "\
fn outer() {
    fn inner() {
        let url = \"http://example.com\"; // a comment with a } brace
    }
    inner();
}
";
    assert_eq!(
        functions(text),
        [function("outer", 1, 6), function("inner", 2, 3)]
    );
}

#[test]
fn inline_test_modules_are_skipped() {
    let text = "\
fn kept() {
}

#[cfg(test)]
mod tests {
    fn skipped() {
    }

    #[test]
    fn also_skipped() {}
}

fn after() {}
";
    assert_eq!(
        functions(text),
        [function("kept", 1, 2), function("after", 13, 1)]
    );
}

#[test]
fn a_test_module_in_its_own_file_is_not_skipped_there() {
    let text = "#[cfg(test)]\nmod tests;\n\nfn kept() {\n}\n";
    assert_eq!(functions(text), [function("kept", 4, 2)]);
}

#[test]
fn line_comments_are_stripped_outside_strings() {
    assert_eq!(strip_line_comment("a { // b"), "a { ");
    assert_eq!(
        strip_line_comment(r#"f("//", "\"//") {"#),
        r#"f("//", "\"//") {"#
    );
}

#[test]
fn long_files_and_functions_are_reported_with_path_and_line() {
    let body = |lines: usize| "    let x = 1;\n".repeat(lines);
    // `long` is one line over the limit, `fits` exactly at it.
    let text = format!(
        "// header\nfn long() {{\n{}}}\n\nfn fits() {{\n{}}}\n",
        body(MAX_FN_LINES - 1),
        body(MAX_FN_LINES - 2)
    );
    assert_eq!(
        size_violations("crates/x/src/a.rs", &text),
        [format!(
            "crates/x/src/a.rs:2: fn `long` is {} lines, over the limit of {MAX_FN_LINES}",
            MAX_FN_LINES + 1
        )]
    );
    assert!(size_violations("f.rs", &"\n".repeat(MAX_FILE_LINES)).is_empty());
    assert_eq!(
        size_violations("f.rs", &"\n".repeat(MAX_FILE_LINES + 1)),
        [format!(
            "f.rs: the file is {} lines, over the limit of {MAX_FILE_LINES}: split it by concern",
            MAX_FILE_LINES + 1
        )]
    );
}

#[test]
fn tests_benches_examples_and_the_demo_are_not_size_checked() {
    assert!(is_size_checked("crates/ao-orchestrator/src/runtime.rs"));
    assert!(is_size_checked("xtask/src/tidy/size.rs"));
    assert!(!is_size_checked("crates/ao-budget/src/tests.rs"));
    assert!(!is_size_checked("xtask/src/tidy/tests.rs"));
    assert!(!is_size_checked("crates/ao-store/src/tests/helpers.rs"));
    assert!(!is_size_checked("crates/ao-gateway/benches/gateway.rs"));
    assert!(!is_size_checked("crates/ao-cli/src/demo.rs"));
    assert!(!is_size_checked("crates/ao-cli/src/notes.md"));
}

#[test]
fn the_architecture_doc_must_name_each_crate_path() {
    let doc = "- `crates/ao-types`: types.\n- `crates/ao-store-extra`: not ao-store.\nao-routing\n";
    let crates = names(&["ao-types", "ao-store", "ao-routing"]);
    assert_eq!(unmapped_crates(doc, &crates), ["ao-store", "ao-routing"]);
}

#[test]
fn dependencies_must_point_to_lower_layers() {
    use DepKind::{Build, Dev, Normal};
    let crates = names(&["ao-types", "ao-routing", "ao-budget", "ao-hooks", "ao-sim"]);
    let deps = [
        dep("ao-types", Normal, 10),
        dep("ao-budget", Normal, 11),
        dep("ao-hooks", Build, 12),
        dep("serde", Normal, 13),
        dep("ao-sim", Dev, 20),
        dep("ao-routing", Dev, 21),
        dep("ao-hooks", Dev, 22),
    ];
    let found: Vec<usize> = layer_violations("ao-routing", &deps, &crates)
        .into_iter()
        .map(|(line, _)| line)
        .collect();
    // Sideways (budget), up (hooks) in normal and build tables and in dev ones that are no test
    // support; ao-sim and ao-routing itself are allowed in dev-dependencies.
    assert_eq!(found, [11, 12, 22]);
}

#[test]
fn test_support_is_allowed_only_in_dev_dependencies() {
    let crates = names(&["ao-routing", "ao-sim"]);
    let deps = [dep("ao-sim", DepKind::Normal, 5)];
    assert_eq!(layer_violations("ao-routing", &deps, &crates).len(), 1);
}

#[test]
fn a_crate_on_no_layer_is_reported() {
    let violations = layer_violations("ao-new", &[], &names(&["ao-new"]));
    assert_eq!(violations.len(), 1);
    assert!(violations[0].1.contains("LAYERS"), "{violations:?}");
}

#[test]
fn no_crate_is_on_two_layers() {
    let all: Vec<&str> = LAYERS.iter().flat_map(|l| l.iter().copied()).collect();
    for name in &all {
        assert_eq!(all.iter().filter(|n| *n == name).count(), 1, "{name}");
    }
    assert_eq!(layer_of("ao-types"), Some(0));
    assert_eq!(layer_of("ao-cli"), Some(LAYERS.len() - 1));
}
