//! The `[signing]` section: its checks, and the agent's events signed through an `EventSigner`
//! (real FROST shares in this process here; the signer nodes as processes are `ao-cli`'s tests).

use std::path::Path;
use std::sync::Arc;

use ao_audit::{AGENT_CHECKPOINT_KIND, ChainHead};
use ao_identity::AgentIdentity;
use ao_orchestrator::{AgentSigning, Config, Orchestrator, SetupError, SigningError, Unverified};
use ao_signer::{EventSigner, LocalSigner, NIP_SA_KINDS, SignerError};
use ao_threshold::{GroupFile, GroupPublic, KeygenConfig, SignerShare, generate_with_dealer};
use ao_types::{SharedClock, TestClock};
use nostr::{Event, EventBuilder, JsonUtil, Keys, ToBech32, UnsignedEvent};

/// A 2-of-3 group, its file (with three transport keys) and a coordinator key file in `dir`.
fn group_in(dir: &Path) -> (GroupPublic, Vec<SignerShare>) {
    let (group, shares) = generate_with_dealer(KeygenConfig {
        threshold: 2,
        total: 3,
    })
    .unwrap();
    let transport: Vec<_> = (0..3).map(|_| Keys::generate().public_key()).collect();
    let file = GroupFile::from_group(&group)
        .unwrap()
        .with_transport_keys(&transport);
    std::fs::write(dir.join("group.json"), file.to_json()).unwrap();
    let key = Keys::generate().secret_key().to_bech32().unwrap();
    std::fs::write(dir.join("coordinator.key"), key).unwrap();
    (group, shares)
}

fn config_text(dir: &Path, pubkey: &str, signing: &str) -> String {
    format!(
        r#"
data_dir = "{dir}"
default_backend = "local"

[[backends]]
provider = "local"
model = "llama3"
endpoint = "http://127.0.0.1:9"
cost_per_1k_input = 0
cost_per_1k_output = 0

[agents.oracle]
pubkey = "{pubkey}"
autonomy = "bounded"
{signing}"#,
        dir = dir.display()
    )
}

const SIGNING: &str = r#"
[signing]
group = "group.json"
relays = ["ws://127.0.0.1:9"]
key = "coordinator.key"
"#;

/// `text` written to `ao.toml` in `dir` and loaded from there.
fn load(dir: &Path, text: &str) -> Result<Config, ao_orchestrator::ConfigError> {
    let path = dir.join("ao.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(&path)
}

#[test]
fn a_signing_section_reads_with_its_paths_from_the_files_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (group, _) = group_in(dir.path());
    let config = load(
        dir.path(),
        &config_text(dir.path(), &group.group_pubkey(), SIGNING),
    )
    .unwrap();
    let signing = config.signing().unwrap();
    assert_eq!(signing.group, dir.path().join("group.json"));
    assert_eq!(signing.key, dir.path().join("coordinator.key"));
    assert_eq!(signing.relays, ["ws://127.0.0.1:9"]);
    assert_eq!(signing.timeout_secs, 5);
    let (orchestrator, _store) = Orchestrator::from_config(&config).unwrap();
    let signing = orchestrator.signing().unwrap();
    assert_eq!(signing.agent(), "oracle");
    assert_eq!(signing.public_key(), group.public_key());
    // Debug shows no secret: the coordinator key's file holds an nsec, never printed.
    let key = std::fs::read_to_string(dir.path().join("coordinator.key")).unwrap();
    assert!(!format!("{config:?}{signing:?}{orchestrator:?}").contains(key.trim()));

    // Without the section nothing signs, as before.
    let config = load(
        dir.path(),
        &config_text(dir.path(), &group.group_pubkey(), ""),
    )
    .unwrap();
    assert!(config.signing().is_none());
    let (orchestrator, _store) = Orchestrator::from_config(&config).unwrap();
    assert!(orchestrator.signing().is_none());
}

#[test]
fn a_bad_signing_section_is_refused_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let (group, _) = group_in(dir.path());
    let text = |signing: &str| config_text(dir.path(), &group.group_pubkey(), signing);
    let line_of =
        |text: &str, needle: &str| text.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
    let cases = [
        (
            SIGNING.replace("key =", "share = \"share-1.json\"\nkey ="),
            "share =",
            "unknown field `share`",
        ),
        (
            SIGNING.replace("[\"ws://127.0.0.1:9\"]", "[]"),
            "relays =",
            "signing.relays is empty",
        ),
        (
            SIGNING.replace("ws://127.0.0.1:9", "http://127.0.0.1:9"),
            "relays =",
            "`http://127.0.0.1:9` is not a relay URL",
        ),
        (
            SIGNING.replace("ws://127.0.0.1:9", "not a url"),
            "relays =",
            "`not a url` is not a relay URL",
        ),
        (
            format!("{SIGNING}timeout_secs = 0\n"),
            "timeout_secs",
            "signing.timeout_secs is 0",
        ),
        (
            SIGNING.replace("group.json", "missing/group.json"),
            "group =",
            "missing/group.json` does not exist",
        ),
        (
            SIGNING.replace("coordinator.key", "nope.key"),
            "key =",
            "nope.key` does not exist",
        ),
    ];
    for (signing, line, message) in cases {
        let text = text(&signing);
        let err = load(dir.path(), &text).unwrap_err();
        assert_eq!(err.line, Some(line_of(&text, line)), "{err}");
        assert!(err.to_string().contains(message), "{message}: {err}");
    }
}

#[test]
fn signing_needs_one_agent_with_the_group_key_and_a_usable_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let (group, _) = group_in(dir.path());
    let other = Keys::generate().public_key().to_hex();
    let config = load(dir.path(), &config_text(dir.path(), &other, SIGNING)).unwrap();
    let err = Orchestrator::from_config(&config).unwrap_err();
    assert!(matches!(err, SetupError::SigningAgent { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!(
            "no agent has the group key as its `pubkey`; give exactly one agent `pubkey = \"{}\"`",
            group.group_pubkey()
        )),
        "{err}"
    );

    // A key file that holds no key: the error names the file and shows none of what it holds.
    std::fs::write(dir.path().join("coordinator.key"), "hunter2-not-a-key").unwrap();
    let config = load(
        dir.path(),
        &config_text(dir.path(), &group.group_pubkey(), SIGNING),
    )
    .unwrap();
    let err = Orchestrator::from_config(&config).unwrap_err();
    let report = ao_types::Report::new(&err).to_string();
    assert!(
        report.contains("coordinator.key` holds no secret key"),
        "{report}"
    );
    assert!(!report.contains("hunter2"), "{report}");
}

fn identity(group: &GroupPublic) -> AgentIdentity {
    AgentIdentity::new(group.group_pubkey(), "oracle", "llama3")
}

fn clock() -> SharedClock {
    Arc::new(TestClock::new(1_800_000_000))
}

#[tokio::test]
async fn the_agents_profile_and_checkpoint_come_back_verified_under_the_group_key() {
    assert!(
        NIP_SA_KINDS.contains(&AGENT_CHECKPOINT_KIND),
        "nodes sign it by default"
    );
    let dir = tempfile::tempdir().unwrap();
    let (group, mut shares) = group_in(dir.path());
    shares.truncate(2);
    let signer = Arc::new(LocalSigner::new(group.clone(), shares));
    let signing = AgentSigning::new(signer, group.clone(), identity(&group), clock()).unwrap();

    let profile = signing.profile().await.unwrap();
    profile.verify().unwrap();
    assert_eq!(profile.kind.as_u16(), 39200);
    assert_eq!(profile.pubkey, group.public_key());
    assert_eq!(profile.created_at.as_secs(), 1_800_000_000);
    let read = ao_threshold::parse_agent_profile(&profile).unwrap();
    assert_eq!(read.name, "oracle");
    assert!(read.is_threshold_protected());

    let head = ChainHead {
        seq: 7,
        hash: "ab".repeat(32),
    };
    let checkpoint = signing
        .checkpoint(&head, 0x414f_5331, "prod")
        .await
        .unwrap();
    checkpoint.event.verify().unwrap();
    assert_eq!(checkpoint.event.kind.as_u16(), AGENT_CHECKPOINT_KIND);
    assert_eq!(checkpoint.head, head);
    assert_eq!(checkpoint.signer, group.public_key());
    assert_eq!(
        ao_audit::parse_checkpoint_json(&checkpoint.event.as_json()).unwrap(),
        checkpoint
    );
}

#[tokio::test]
async fn too_few_shares_or_no_relay_is_an_error_and_another_agents_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (group, mut shares) = group_in(dir.path());
    shares.truncate(1);
    let signer = Arc::new(LocalSigner::new(group.clone(), shares));
    let signing = AgentSigning::new(signer, group.clone(), identity(&group), clock()).unwrap();
    let err = signing.profile().await.unwrap_err();
    assert!(matches!(err, SigningError::Nodes { .. }), "{err}");

    // The nodes of [signing], on a relay where nothing listens: a clear error, in time.
    let section = ao_signer::SigningConfig {
        group: dir.path().join("group.json"),
        relays: vec!["ws://127.0.0.1:9".into()],
        key: dir.path().join("coordinator.key"),
        timeout_secs: 1,
    };
    let remote = Arc::new(section.open().unwrap());
    let signing = AgentSigning::new(remote, group.clone(), identity(&group), clock()).unwrap();
    let started = std::time::Instant::now();
    let err = signing.profile().await.unwrap_err();
    let report = ao_types::Report::new(&err).to_string();
    assert!(
        report.starts_with("the signer nodes did not sign the agent's profile: no relay answered"),
        "{report}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    let stranger = AgentIdentity::new(Keys::generate().public_key().to_hex(), "x", "m");
    let signer = Arc::new(LocalSigner::new(group.clone(), Vec::new()));
    let err = AgentSigning::new(signer, group, stranger, clock()).unwrap_err();
    assert!(matches!(err, SigningError::NotTheGroupKey { .. }), "{err}");
}

/// A signer that holds the real shares but cheats: it signs something else than it was asked
/// to, or signs under a key of its own.
struct Cheater {
    honest: LocalSigner,
    stranger: Option<Keys>,
}

#[async_trait::async_trait]
impl EventSigner for Cheater {
    fn public_key(&self) -> nostr::PublicKey {
        self.honest.public_key()
    }

    async fn sign_event(&self, unsigned: UnsignedEvent) -> Result<Event, SignerError> {
        if let Some(stranger) = &self.stranger {
            let forged = EventBuilder::new(unsigned.kind, unsigned.content.clone())
                .tags(unsigned.tags.clone())
                .sign_with_keys(stranger)
                .unwrap();
            return Ok(forged);
        }
        // The checkpoint of another entry, validly signed by the group.
        let json = unsigned.as_json().replace("\"7\"", "\"6\"");
        let mut other = UnsignedEvent::from_json(json).unwrap();
        other.id = None;
        other.ensure_id();
        self.honest.sign_event(other).await
    }
}

#[tokio::test]
async fn an_event_the_signer_changed_or_signed_under_another_key_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let (group, mut shares) = group_in(dir.path());
    let rest = shares.split_off(2);
    let head = ChainHead {
        seq: 7,
        hash: "ab".repeat(32),
    };
    let cheater = Arc::new(Cheater {
        honest: LocalSigner::new(group.clone(), shares),
        stranger: None,
    });
    let signing = AgentSigning::new(cheater, group.clone(), identity(&group), clock()).unwrap();
    let err = signing.checkpoint(&head, 1, "prod").await.unwrap_err();
    assert!(
        matches!(
            err,
            SigningError::Invalid {
                source: Unverified::OtherHead { found: 6, asked: 7 },
                ..
            }
        ),
        "{err}"
    );

    let cheater = Arc::new(Cheater {
        honest: LocalSigner::new(group.clone(), rest),
        stranger: Some(Keys::generate()),
    });
    let signing = AgentSigning::new(cheater, group.clone(), identity(&group), clock()).unwrap();
    let err = signing.profile().await.unwrap_err();
    assert!(
        matches!(
            err,
            SigningError::Invalid {
                source: Unverified::Author { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(
        ao_types::Report::new(&err)
            .to_string()
            .starts_with("the agent's profile the signer nodes returned does not verify"),
        "{err}"
    );
}
