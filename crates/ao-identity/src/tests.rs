use nostr::{Keys, ToBech32};
use proptest::prelude::*;

use super::*;

fn hex_key() -> String {
    Keys::generate().public_key().to_hex()
}

/// 32 bytes that are not the x coordinate of any point on secp256k1.
const OFF_CURVE: &str = "0000000000000000000000000000000000000000000000000000000000000005";

fn real_config(t: u32, n: u32) -> (ThresholdConfig, String) {
    let group = hex_key();
    let config = ThresholdConfig::new(t, n)
        .with_signers((0..n).map(|_| hex_key()).collect())
        .with_group_pubkey(group.clone());
    (config, group)
}

#[test]
fn parses_hex_and_npub_to_the_same_key() {
    let keys = Keys::generate();
    let hex = keys.public_key().to_hex();
    let npub = keys.public_key().to_bech32().unwrap();
    assert_eq!(parse_public_key(&hex).unwrap(), keys.public_key());
    assert_eq!(parse_public_key(&npub).unwrap(), keys.public_key());
}

#[test]
fn refuses_what_is_not_a_key() {
    for bad in [
        "",
        "signer1_pubkey",
        OFF_CURVE,
        &"ab".repeat(31),
        &"ab".repeat(33),
        "npub1qqqqqq",
        &format!("02{}", hex_key()),
    ] {
        let err = parse_public_key(bad).unwrap_err();
        assert!(
            err.to_string()
                .contains("is not a secp256k1 x-only public key"),
            "{bad}"
        );
    }
    let long = "z".repeat(10_000);
    assert_eq!(parse_public_key(&long).unwrap_err().shown.len(), 80);
}

#[test]
fn spec_placeholder_config_is_structurally_valid_only() {
    let config = ThresholdConfig::new(2, 3)
        .with_signers(vec![
            "signer1_pubkey".to_string(),
            "signer2_pubkey".to_string(),
            "signer3_pubkey".to_string(),
        ])
        .with_group_pubkey("group_pubkey".to_string());
    assert!(config.is_valid());
    assert!(matches!(
        config.validate(),
        Err(ThresholdConfigError::InvalidSignerKey { index: 0, .. })
    ));
}

#[test]
fn structural_rules() {
    let signers = |n: usize| (0..n).map(|i| format!("s{i}")).collect::<Vec<_>>();
    let check = |t, n, keys: Vec<String>, group: &str| {
        ThresholdConfig::new(t, n)
            .with_signers(keys)
            .with_group_pubkey(group.into())
            .validate()
            .unwrap_err()
    };
    assert_eq!(
        check(0, 3, signers(3), "g"),
        ThresholdConfigError::ThresholdZero
    );
    assert_eq!(
        check(4, 3, signers(3), "g"),
        ThresholdConfigError::ThresholdAboveTotal {
            threshold: 4,
            total: 3
        }
    );
    assert_eq!(
        check(2, 3, signers(2), "g"),
        ThresholdConfigError::SignerCountMismatch {
            expected: 3,
            found: 2
        }
    );
    assert_eq!(
        check(2, 3, vec!["a".into(), "b".into(), "a".into()], "g"),
        ThresholdConfigError::DuplicateSigner {
            index: 2,
            first_index: 0
        }
    );
    assert_eq!(
        check(2, 3, signers(3), " "),
        ThresholdConfigError::MissingGroupKey
    );
    assert_eq!(
        check(1, 70_000, vec![], "g"),
        ThresholdConfigError::TooManySigners {
            total: 70_000,
            max: 65_535
        }
    );
    assert!(!ThresholdConfig::new(2, 3).is_valid());
    assert!(
        ThresholdConfig::new(1, 1)
            .with_signers(signers(1))
            .with_group_pubkey("g".into())
            .is_valid()
    );
}

#[test]
fn real_keys_validate() {
    let (config, _) = real_config(2, 3);
    assert_eq!(config.validate(), Ok(()));
}

#[test]
fn duplicate_signer_written_two_ways_is_caught() {
    let keys = Keys::generate();
    let config = ThresholdConfig::new(2, 2)
        .with_signers(vec![
            keys.public_key().to_hex(),
            keys.public_key().to_bech32().unwrap(),
        ])
        .with_group_pubkey(hex_key());
    assert!(config.is_valid());
    assert_eq!(
        config.validate(),
        Err(ThresholdConfigError::DuplicateSigner {
            index: 1,
            first_index: 0
        })
    );
}

#[test]
fn bad_group_key_is_named() {
    let (config, _) = real_config(2, 3);
    let err = config
        .with_group_pubkey(OFF_CURVE.into())
        .validate()
        .unwrap_err();
    assert!(matches!(err, ThresholdConfigError::InvalidGroupKey(_)));
    assert_eq!(err.to_string(), "the group public key is not valid");
    let report = ao_types::Report::new(&err).to_string();
    assert!(
        report.starts_with("the group public key is not valid: `0000"),
        "{report}"
    );
}

#[test]
fn autonomy_table_of_the_spec() {
    use AutonomyLevel::*;
    let t = DEFAULT_APPROVAL_ABOVE_SATS;
    assert_eq!(t, 1_000);
    for cost in [0, 1, 999, 1_000, 1_001, 5_000, u64::MAX] {
        assert!(Supervised.requires_approval(cost, t));
        assert_eq!(SemiAutonomous.requires_approval(cost, t), cost > 1_000);
        assert!(!FullyAutonomous.requires_approval(cost, t));
    }
    assert!(!SemiAutonomous.requires_approval(50, 100));
    assert!(SemiAutonomous.requires_approval(101, 100));
    assert_eq!(AutonomyLevel::default(), Supervised);
}

#[test]
fn autonomy_words() {
    use AutonomyLevel::*;
    assert_eq!(
        AutonomyLevel::ALL.map(AutonomyLevel::nip_sa_word),
        ["supervised", "bounded", "autonomous"]
    );
    for level in AutonomyLevel::ALL {
        assert_eq!(level.as_str().parse::<AutonomyLevel>(), Ok(level));
        assert_eq!(level.nip_sa_word().parse::<AutonomyLevel>(), Ok(level));
        let json = serde_json::to_string(&level).unwrap();
        assert_eq!(json, format!("\"{}\"", level.as_str()));
        assert_eq!(serde_json::from_str::<AutonomyLevel>(&json).unwrap(), level);
    }
    assert_eq!(
        serde_json::from_str::<AutonomyLevel>("\"bounded\"").unwrap(),
        SemiAutonomous
    );
    assert!("root".parse::<AutonomyLevel>().is_err());
}

#[test]
fn identity_builders() {
    let identity = AgentIdentity::new("agent_pubkey", "MyAgent", "codex-sonnet-4")
        .with_autonomy(AutonomyLevel::SemiAutonomous)
        .with_operator("operator_pubkey");
    assert_eq!(identity.agent_pubkey, "agent_pubkey");
    assert_eq!(identity.model, "codex-sonnet-4");
    assert_eq!(identity.autonomy_level, AutonomyLevel::SemiAutonomous);
    assert_eq!(identity.operator_pubkey.as_deref(), Some("operator_pubkey"));
    assert!(identity.threshold_config.is_none());
    assert_eq!(
        AgentIdentity::new("k", "n", "m").autonomy_level,
        AutonomyLevel::Supervised
    );
}

#[test]
fn threshold_protection_needs_real_keys_and_the_group_key() {
    let (config, group) = real_config(2, 3);
    let protected = AgentIdentity::new(&group, "A", "m")
        .with_operator(hex_key())
        .with_threshold(config.clone());
    assert_eq!(protected.validate(), Ok(()));
    assert!(protected.is_threshold_protected());

    let other_key = AgentIdentity::new(hex_key(), "A", "m").with_threshold(config.clone());
    assert_eq!(
        other_key.validate(),
        Err(IdentityError::AgentKeyNotGroupKey)
    );
    assert!(!other_key.is_threshold_protected());

    let unprotected = AgentIdentity::new(&group, "A", "m");
    assert_eq!(unprotected.validate(), Ok(()));
    assert!(!unprotected.is_threshold_protected());

    let placeholders = AgentIdentity::new("agent_pubkey", "A", "m").with_threshold(
        ThresholdConfig::new(2, 3)
            .with_signers(vec!["a".into(), "b".into(), "c".into()])
            .with_group_pubkey("agent_pubkey".into()),
    );
    assert!(!placeholders.is_threshold_protected());

    let bad_operator = AgentIdentity::new(&group, "A", "m").with_operator("operator_pubkey");
    assert!(matches!(
        bad_operator.validate(),
        Err(IdentityError::InvalidOperatorKey(_))
    ));
}

#[test]
fn identity_serde_round_trip_and_unknown_fields() {
    let (config, group) = real_config(2, 3);
    let identity = AgentIdentity::new(&group, "A", "m")
        .with_autonomy(AutonomyLevel::FullyAutonomous)
        .with_threshold(config);
    let json = serde_json::to_string(&identity).unwrap();
    assert_eq!(
        serde_json::from_str::<AgentIdentity>(&json).unwrap(),
        identity
    );

    let minimal: AgentIdentity =
        serde_json::from_str(r#"{"agent_pubkey":"k","name":"n","model":"m"}"#).unwrap();
    assert_eq!(minimal.autonomy_level, AutonomyLevel::Supervised);

    let err = serde_json::from_str::<AgentIdentity>(
        r#"{"agent_pubkey":"k","name":"n","model":"m","autonomy":"x"}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown field `autonomy`"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn config_round_trips_through_json(t in 0u32..6, n in 0u32..6, group in "[a-z0-9]{0,8}") {
        let config = ThresholdConfig::new(t, n)
            .with_signers((0..n).map(|i| format!("s{i}")).collect())
            .with_group_pubkey(group.clone());
        let back: ThresholdConfig = serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
        prop_assert_eq!(&back, &config);
        prop_assert_eq!(config.is_valid(), t >= 1 && t <= n && !group.is_empty());
    }

    #[test]
    fn semi_autonomous_rule(cost in any::<u64>(), threshold in any::<u64>()) {
        prop_assert_eq!(AutonomyLevel::SemiAutonomous.requires_approval(cost, threshold), cost > threshold);
    }
}
