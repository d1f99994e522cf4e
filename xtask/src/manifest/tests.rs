use super::*;

const MEMBER: &str = r#"
[package]
name = "ao-example" # a comment
version.workspace = true

[features]
default = ["http"]
## Real backends.
http = [
    "dep:reqwest", # the client
    "dep:tokio",
]
"with-#-hash" = []

[dependencies]
ao-types.workspace = true
serde = { workspace = true, features = ["derive"] }
http-body-util = "0.1"
local = { path = "../local", version = "0.1" }
split.workspace = true
split.features = ["x"]

[dev-dependencies]
tokio = { workspace = true, features = ["rt", "macros"] }
proptest = { version = "1", default-features = false }

[build-dependencies]
cc = "1"

[target.'cfg(unix)'.dependencies]
libc.workspace = true

[target."cfg(windows)".dev-dependencies.winapi]
version = "0.3"

[dependencies.tabled]
workspace = true
optional = true

[[bench]]
name = "tracker"
harness = false
"#;

fn dep(name: &str, kind: DepKind, workspace: bool, line: usize) -> Dependency {
    Dependency {
        name: name.to_owned(),
        kind,
        workspace,
        line,
    }
}

#[test]
fn features_are_read_with_multi_line_arrays_and_quoted_names() {
    assert_eq!(features(MEMBER), ["default", "http", "with-#-hash"]);
}

#[test]
fn a_manifest_without_features_has_none() {
    assert!(features("[package]\nname = \"x\"\n").is_empty());
}

#[test]
fn array_values_are_joined_without_their_comments() {
    let http = entries(MEMBER)
        .into_iter()
        .find(|e| e.key == ["http"])
        .unwrap();
    assert_eq!(http.value, r#"[ "dep:reqwest", "dep:tokio", ]"#);
    assert_eq!(http.line, 9);
    assert_eq!(string_array(&http.value), ["dep:reqwest", "dep:tokio"]);
}

#[test]
fn every_kind_of_dependency_is_found_with_its_line() {
    use DepKind::{Build, Dev, Normal};
    assert_eq!(
        dependencies(MEMBER),
        [
            dep("ao-types", Normal, true, 16),
            dep("serde", Normal, true, 17),
            dep("http-body-util", Normal, false, 18),
            dep("local", Normal, false, 19),
            dep("split", Normal, true, 20),
            dep("tokio", Dev, true, 24),
            dep("proptest", Dev, false, 25),
            dep("cc", Build, false, 28),
            dep("libc", Normal, true, 31),
            dep("winapi", Dev, false, 34),
            dep("tabled", Normal, true, 37),
        ]
    );
}

#[test]
fn workspace_false_or_in_a_string_is_not_from_the_workspace() {
    let text = "[dependencies]\n\
                a = { workspace = false }\n\
                b = { path = \"workspace = true\" }\n\
                c.workspace = false\n";
    assert!(dependencies(text).iter().all(|d| !d.workspace));
}

#[test]
fn members_and_package_name_are_read() {
    let root = "[workspace]\nresolver = \"3\"\nmembers = [\"crates/*\", \"tests\", \"xtask\"]\n";
    assert_eq!(workspace_members(root), ["crates/*", "tests", "xtask"]);
    assert_eq!(package_name(MEMBER).as_deref(), Some("ao-example"));
    assert_eq!(package_name(root), None);
}

#[test]
fn dotted_names_keep_their_quoted_parts_whole() {
    assert_eq!(
        split_dotted(r#"target.'cfg(target_os = "linux")'.dependencies"#),
        ["target", r#"cfg(target_os = "linux")"#, "dependencies"]
    );
    assert_eq!(split_dotted(r#""a.b".c"#), ["a.b", "c"]);
}

#[test]
fn inline_tables_split_at_top_level_commas_only() {
    assert_eq!(
        inline_table(r#"{ workspace = true, features = ["a", "b"], x = "1,2" }"#),
        [
            ("workspace".to_owned(), "true".to_owned()),
            ("features".to_owned(), r#"["a", "b"]"#.to_owned()),
            ("x".to_owned(), r#""1,2""#.to_owned()),
        ]
    );
    assert!(inline_table(r#""0.1""#).is_empty());
}
