//! "Threshold-Protected Identity" and "Agent Identity (NIP-SA)".

use agent_orchestrator::identity::{DEFAULT_APPROVAL_ABOVE_SATS, IdentityError};

#[test]
fn threshold_config_usage() {
    // --- spec: ThresholdConfig / Usage
    use agent_orchestrator::ThresholdConfig;

    // 2-of-3 threshold configuration
    let config = ThresholdConfig::new(2, 3)
        .with_signers(vec![
            "signer1_pubkey".to_string(),
            "signer2_pubkey".to_string(),
            "signer3_pubkey".to_string(),
        ])
        .with_group_pubkey("group_pubkey".to_string());

    // Validate configuration
    assert!(config.is_valid());
    // --- end spec

    assert_eq!(config.threshold, 2);
    assert_eq!(config.total_signers, 3);
    assert_eq!(config.signer_pubkeys.len(), 3);
    assert_eq!(config.group_pubkey, "group_pubkey");
    // The placeholders are not keys: the full check says so.
    assert!(config.validate().is_err());
    // One signer fewer is not a valid 2-of-3.
    let short = ThresholdConfig::new(2, 3)
        .with_signers(vec!["a".into(), "b".into()])
        .with_group_pubkey("g".into());
    assert!(!short.is_valid());
}

#[test]
fn threshold_config_has_the_spec_fields() {
    // --- spec: ThresholdConfig struct, built field by field
    let config = agent_orchestrator::ThresholdConfig {
        threshold: 2,
        total_signers: 3,
        signer_pubkeys: vec!["a".into(), "b".into(), "c".into()],
        group_pubkey: "g".into(),
    };
    // --- end spec
    assert!(config.is_valid());
}

#[test]
fn agent_identity_usage() {
    let signers = vec![
        "signer1_pubkey".to_string(),
        "signer2_pubkey".to_string(),
        "signer3_pubkey".to_string(),
    ];

    // --- spec: AgentIdentity / Usage
    use agent_orchestrator::{AgentIdentity, AutonomyLevel, ThresholdConfig};

    let identity = AgentIdentity::new("agent_pubkey", "MyAgent", "codex-sonnet-4")
        .with_autonomy(AutonomyLevel::SemiAutonomous)
        .with_operator("operator_pubkey")
        .with_threshold(ThresholdConfig::new(2, 3).with_signers(signers));

    // Check if threshold-protected
    if identity.is_threshold_protected() {
        println!("Agent has unforgeable identity");
    }
    // --- end spec

    // Placeholder keys and no group key protect nothing, so the claim is not printed.
    assert!(!identity.is_threshold_protected());
    assert_eq!(identity.agent_pubkey, "agent_pubkey");
    assert_eq!(identity.name, "MyAgent");
    assert_eq!(identity.model, "codex-sonnet-4");
    assert_eq!(identity.autonomy_level, AutonomyLevel::SemiAutonomous);
    assert_eq!(identity.operator_pubkey.as_deref(), Some("operator_pubkey"));
    assert_eq!(
        identity
            .threshold_config
            .as_ref()
            .unwrap()
            .signer_pubkeys
            .len(),
        3
    );
    assert!(matches!(
        identity.validate(),
        Err(IdentityError::InvalidAgentKey(_))
    ));
}

#[test]
fn agent_identity_has_the_spec_fields() {
    use agent_orchestrator::{AgentIdentity, AutonomyLevel};
    // --- spec: AgentIdentity struct, built field by field
    let identity = AgentIdentity {
        agent_pubkey: String::new(),
        name: String::new(),
        autonomy_level: AutonomyLevel::Supervised,
        threshold_config: None,
        operator_pubkey: None,
        model: String::new(),
    };
    // --- end spec
    assert!(!identity.is_threshold_protected());
}

#[test]
fn autonomy_levels_and_their_table() {
    use agent_orchestrator::AutonomyLevel;
    // --- spec: Autonomy Levels (the three variants)
    let levels = [
        AutonomyLevel::Supervised,      // All actions require approval
        AutonomyLevel::SemiAutonomous,  // Low-cost auto, high-cost needs approval
        AutonomyLevel::FullyAutonomous, // No approval required
    ];
    // --- end spec

    // | Supervised | Always | ; | SemiAutonomous | Cost > 1000 sats | ; | FullyAutonomous | Never |
    let threshold = DEFAULT_APPROVAL_ABOVE_SATS;
    assert_eq!(threshold, 1000);
    for cost in [0, 1, 500, 1000, 1001, 5000, 1_000_000] {
        assert!(
            levels[0].requires_approval(cost, threshold),
            "supervised, {cost}"
        );
        assert_eq!(
            levels[1].requires_approval(cost, threshold),
            cost > 1000,
            "semi, {cost}"
        );
        assert!(
            !levels[2].requires_approval(cost, threshold),
            "fully, {cost}"
        );
    }
    assert_eq!(AutonomyLevel::default(), AutonomyLevel::Supervised);
}
