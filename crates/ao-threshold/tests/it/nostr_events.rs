use ao_identity::{AgentIdentity, AutonomyLevel};
use ao_threshold::{
    KeygenConfig, KeygenSession, ThresholdError, agent_profile, parse_agent_profile, sign_event,
};
use nostr::{Event, EventBuilder, JsonUtil, Keys, Kind};

#[test]
fn a_group_signed_event_passes_nostrs_own_verification() {
    let out = KeygenSession::new(KeygenConfig {
        threshold: 2,
        total: 3,
    })
    .complete()
    .unwrap();
    let unsigned =
        EventBuilder::text_note("hello from a threshold key").build(out.group.public_key());
    let event = sign_event(&out.group, &[&out.shares[0], &out.shares[1]], unsigned).unwrap();
    event.verify().unwrap();
    assert_eq!(event.pubkey, out.group.public_key());
    // What a relay receives: the JSON, parsed and verified from scratch.
    let relayed = Event::from_json(event.as_json()).unwrap();
    relayed.verify().unwrap();
    assert!(crate::bip340_valid(
        &out.group,
        relayed.id.as_bytes(),
        relayed.sig.as_ref()
    ));

    let stranger = EventBuilder::new(Kind::TextNote, "x").build(Keys::generate().public_key());
    assert!(matches!(
        sign_event(&out.group, &[&out.shares[0], &out.shares[1]], stranger),
        Err(ThresholdError::EventAuthor { .. })
    ));
}

#[test]
fn the_nip_sa_profile_round_trips() {
    let out = KeygenSession::new(KeygenConfig {
        threshold: 2,
        total: 3,
    })
    .complete()
    .unwrap();
    let operator = Keys::generate().public_key().to_hex();
    let identity = AgentIdentity::new(out.group_pubkey(), "ProductionAgent", "codex-sonnet-4")
        .with_autonomy(AutonomyLevel::SemiAutonomous)
        .with_operator(&operator)
        .with_threshold(out.group.threshold_config());
    let unsigned = agent_profile(&identity, &out.group, 1_795_910_400).unwrap();
    let event = sign_event(&out.group, &[&out.shares[2], &out.shares[0]], unsigned).unwrap();
    assert_eq!(event.kind.as_u16(), 39200);
    let tag = |name: &str| {
        event
            .tags
            .iter()
            .find(|t| t.as_slice()[0] == name)
            .map(|t| t.as_slice()[1..].to_vec())
    };
    assert_eq!(tag("autonomy").unwrap(), ["bounded"]);
    assert_eq!(tag("threshold").unwrap(), ["2", "3"]);
    assert_eq!(tag("operator").unwrap(), std::slice::from_ref(&operator));
    assert_eq!(
        event
            .tags
            .iter()
            .filter(|t| t.as_slice()[0] == "signer")
            .count(),
        3
    );

    let parsed = parse_agent_profile(&Event::from_json(event.as_json()).unwrap()).unwrap();
    assert_eq!(parsed, identity);
    assert!(parsed.is_threshold_protected());

    // A profile whose tags were changed after signing is refused.
    let mut json: serde_json::Value = serde_json::from_str(&event.as_json()).unwrap();
    json["tags"][3][1] = "autonomous".into();
    let forged = Event::from_json(json.to_string()).unwrap();
    assert!(matches!(
        parse_agent_profile(&forged),
        Err(ThresholdError::Profile { .. })
    ));

    // A profile of an identity whose key is not the group key cannot be built.
    let other = AgentIdentity::new(Keys::generate().public_key().to_hex(), "X", "m");
    assert!(agent_profile(&other, &out.group, 0).is_err());
}
