use ao_orchestrator::Config;

const MINIMAL: &str = r#"
default_backend = "local"

[[backends]]
provider = "local"
model = "llama3"
endpoint = "http://localhost:11434"
cost_per_1k_input = 0
cost_per_1k_output = 0

[agents.explore]
backend = "local"
autonomy = "bounded"
budget = { daily_limit_sats = 1000, session_limit_sats = 100, daily_token_cap = 50000 }
"#;

#[test]
fn a_valid_file_reads_with_defaults() {
    let config = Config::from_toml(MINIMAL).unwrap();
    assert_eq!(config.backends.len(), 1);
    let agent = &config.agents["explore"];
    assert_eq!(agent.autonomy, ao_identity::AutonomyLevel::SemiAutonomous);
    assert_eq!(agent.budget.unwrap().warn_threshold_pct, 80);
    assert_eq!(agent.budget.unwrap().daily_token_cap, Some(50_000));
    assert_eq!(config.approvals.expiry_secs, 86_400);
    assert_eq!(config.server.listen, "127.0.0.1:8080");
    assert!(config.database_path().ends_with("ao.db"));
}

#[test]
fn an_unknown_key_names_its_line() {
    let text = MINIMAL.replace("model = \"llama3\"", "model = \"llama3\"\ntemperature = 2");
    let err = Config::from_toml(&text).unwrap_err();
    assert_eq!(err.line, Some(7), "{err}");
    assert!(
        err.to_string()
            .starts_with("config line 7: unknown field `temperature`"),
        "{err}"
    );
}

#[test]
fn bad_values_name_their_line() {
    let err =
        Config::from_toml(&MINIMAL.replace("provider = \"local\"", "provider = \"anthropic\""))
            .unwrap_err();
    assert_eq!(err.line, Some(5), "{err}");
    assert!(err.to_string().contains("anthropic"), "{err}");

    let err =
        Config::from_toml(&MINIMAL.replace("cost_per_1k_input = 0", "cost_per_1k_input = -3"))
            .unwrap_err();
    assert_eq!(err.line, Some(8), "{err}");

    let err =
        Config::from_toml(&MINIMAL.replace("autonomy = \"bounded\"", "autonomy = \"reckless\""))
            .unwrap_err();
    assert_eq!(err.line, Some(13), "{err}");

    let err =
        Config::from_toml(&MINIMAL.replace("\nbackend = \"local\"", "\nbackend = \"openai\""))
            .unwrap_err();
    assert_eq!(err.line, Some(12), "{err}");
    assert!(
        err.message
            .contains("agents.explore.backend: no `openai` backend is configured"),
        "{err}"
    );

    let err =
        Config::from_toml(&MINIMAL.replace("autonomy = \"bounded\"", "operator = \"npub1nope\""))
            .unwrap_err();
    assert_eq!(err.line, Some(13), "{err}");
    assert!(
        err.message.contains("is not a secp256k1 x-only public key"),
        "{err}"
    );

    let err = Config::from_toml(&MINIMAL.replace("http://localhost:11434", "localhost:11434"))
        .unwrap_err();
    assert_eq!(err.line, Some(7), "{err}");

    let err = Config::from_toml(&MINIMAL.replace("[agents.explore]", "[agents.\"bad name\"]"))
        .unwrap_err();
    assert!(err.message.contains("agent name"), "{err}");

    let err = Config::from_toml("default_backend = \"codex\"").unwrap_err();
    assert!(
        err.message
            .contains("default_backend `codex` is not among the configured backends"),
        "{err}"
    );

    let twice = format!(
        "{MINIMAL}\n[[backends]]\nprovider = \"local\"\nmodel = \"x\"\ncost_per_1k_input = 0\ncost_per_1k_output = 0\n"
    );
    let err = Config::from_toml(&twice).unwrap_err();
    assert_eq!(err.line, Some(17), "{err}");
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let err = Config::load(std::path::Path::new("/nonexistent/ao.toml")).unwrap_err();
    assert!(
        err.message
            .starts_with("cannot read `/nonexistent/ao.toml`"),
        "{err}"
    );
}

#[test]
fn the_earlier_name_of_the_approval_amount_is_still_read() {
    let text = "default_backend = \"codex\"\n[[backends]]\nprovider = \"codex\"\nmodel = \"m\"\ncost_per_1k_input = 3\ncost_per_1k_output = 15\n[agents.oracle]\nautonomy = \"semi-autonomous\"\napproval_threshold_sats = 42\n";
    let config = ao_orchestrator::Config::from_toml(text).unwrap();
    assert_eq!(config.agents["oracle"].approval_above_sats, Some(42));
}

const DVM: &str = r#"default_backend = "dvm"

[[backends]]
provider = "dvm"
model = "llama"
relays = ["wss://relay.example"]
max_bid_sats = 100
cost_per_1k_input = 0
cost_per_1k_output = 0
"#;

#[test]
fn a_dvm_backend_reads_with_its_relays_and_bid() {
    let config = Config::from_toml(DVM).unwrap();
    let dvm = &config.backends[0];
    assert_eq!(dvm.relays[0].get_ref(), "wss://relay.example");
    assert_eq!(dvm.max_bid_sats.as_ref().map(|b| *b.get_ref()), Some(100));
    assert_eq!(dvm.job_kind, None, "5050 by default");
}

#[test]
fn a_dvm_backend_without_a_bid_or_relays_is_refused_at_its_line() {
    let err = Config::from_toml(&DVM.replace("max_bid_sats = 100\n", "")).unwrap_err();
    assert_eq!(err.line, Some(4), "{err}");
    assert!(err.message.contains("max_bid_sats"), "{err}");
    let err =
        Config::from_toml(&DVM.replace("max_bid_sats = 100", "max_bid_sats = 0")).unwrap_err();
    assert_eq!(err.line, Some(7), "{err}");
    let err =
        Config::from_toml(&DVM.replace(r#"relays = ["wss://relay.example"]"#, "")).unwrap_err();
    assert!(err.message.contains("needs `relays`"), "{err}");
    let err = Config::from_toml(&DVM.replace("wss://relay", "https://relay")).unwrap_err();
    assert_eq!(err.line, Some(6), "{err}");
    let err = Config::from_toml(&DVM.replace("max_bid_sats", "job_kind = 6050\nmax_bid_sats"))
        .unwrap_err();
    assert!(err.message.contains("not a NIP-90 job kind"), "{err}");
    let err =
        Config::from_toml(&DVM.replace("max_bid_sats", "service_pubkey = \"nope\"\nmax_bid_sats"))
            .unwrap_err();
    assert!(err.message.contains("service_pubkey"), "{err}");
    let err =
        Config::from_toml(&DVM.replace("max_bid_sats", "api_key_env = \"KEY\"\nmax_bid_sats"))
            .unwrap_err();
    assert!(
        err.message.contains("not an `endpoint` or `api_key_env`"),
        "{err}"
    );
}

#[test]
fn dvm_fields_on_another_provider_are_refused() {
    let text = r#"default_backend = "codex"

[[backends]]
provider = "codex"
model = "m"
cost_per_1k_input = 3
cost_per_1k_output = 15
max_bid_sats = 5
"#;
    let err = Config::from_toml(text).unwrap_err();
    assert_eq!(err.line, Some(8), "{err}");
    assert!(err.message.contains("for the `dvm` provider only"), "{err}");
}
