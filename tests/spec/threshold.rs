//! "Integration with External Systems / FROSTR Key Ceremony": the spec's future sample, real now.
//! The one change is the import path: the spec's placeholder crate `frostr` is
//! `agent_orchestrator::threshold` here.

use agent_orchestrator::threshold::{sign_message, GroupFile};

#[test]
fn frostr_key_ceremony() -> Result<(), Box<dyn std::error::Error>> {
    // --- spec: FROSTR Key Ceremony (import path adapted)
    use agent_orchestrator::threshold::keygen::{KeygenSession, KeygenConfig};
    use agent_orchestrator::ThresholdConfig;

    let keygen = KeygenSession::new(KeygenConfig {
        threshold: 2,
        total: 3,
    });

    // Participants exchange messages...
    let shares = keygen.complete()?;

    // Create agent identity with real threshold key
    let config = ThresholdConfig::new(2, 3)
        .with_signers(shares.signer_pubkeys())
        .with_group_pubkey(shares.group_pubkey());
    // --- end spec

    config.validate()?;
    assert!(config.is_valid());
    let identity = agent_orchestrator::AgentIdentity::new(shares.group_pubkey(), "agent", "model")
        .with_threshold(config);
    assert!(identity.is_threshold_protected());
    let signature = sign_message(&shares.group, &[&shares.shares[0], &shares.shares[1]], &[42; 32])?;
    assert!(shares.group.verify(&[42; 32], &signature));
    assert_eq!(GroupFile::from_group(&shares.group)?.group_pubkey, shares.group_pubkey());
    Ok(())
}
