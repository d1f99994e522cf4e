use ao_identity::{AgentIdentity, AutonomyLevel, ThresholdConfig, parse_public_key};
use nostr::secp256k1::schnorr;
use nostr::{Event, EventBuilder, Kind, Tag, TagKind, Timestamp, UnsignedEvent};

use crate::error::ThresholdError;
use crate::group::GroupPublic;
use crate::share::SignerShare;
use crate::sign::sign_message;

/// The NIP-SA agent profile kind.
pub const AGENT_PROFILE_KIND: u16 = 39200;

/// Signs `unsigned` with the group key: the shares sign the event's id, and the result is an
/// ordinary Nostr event that `nostr`'s own verification (and any relay) accepts.
///
/// The event's author must be the group key.
pub fn sign_event(
    group: &GroupPublic,
    shares: &[&SignerShare],
    mut unsigned: UnsignedEvent,
) -> Result<Event, ThresholdError> {
    if unsigned.pubkey != group.public_key() {
        return Err(ThresholdError::EventAuthor {
            author: unsigned.pubkey.to_hex(),
            group_pubkey: group.group_pubkey(),
        });
    }
    unsigned
        .verify_id()
        .map_err(|e| ThresholdError::Malformed {
            what: "event",
            reason: e.to_string(),
        })?;
    let id = unsigned.id();
    let signature = sign_message(group, shares, id.as_bytes())?;
    let signature =
        schnorr::Signature::from_slice(&signature).map_err(|e| ThresholdError::Malformed {
            what: "signature",
            reason: e.to_string(),
        })?;
    let event = unsigned
        .add_signature(signature)
        .map_err(ThresholdError::SignedEventInvalid)?;
    event.verify().map_err(ThresholdError::SignedEventInvalid)?;
    Ok(event)
}

/// The NIP-SA agent profile (kind 39200) of `identity`, to be signed by `group` with
/// [`sign_event`]. Tags: `d`, `name`, `model`, `autonomy` (the NIP-SA word), `threshold`
/// (`t`, `n`), one `signer` per signer, and `operator` when set.
///
/// The identity's key must be the group key, and its operator key (if any) must parse.
pub fn agent_profile(
    identity: &AgentIdentity,
    group: &GroupPublic,
    created_at: u64,
) -> Result<UnsignedEvent, ThresholdError> {
    let agent = parse_public_key(&identity.agent_pubkey).map_err(|e| ThresholdError::Profile {
        reason: format!("agent key: {e}"),
    })?;
    if agent != group.public_key() {
        return Err(ThresholdError::Profile {
            reason: "the agent's key is not the group key".into(),
        });
    }
    let custom = |name: &str, values: Vec<String>| Tag::custom(TagKind::custom(name), values);
    let mut tags = vec![
        Tag::identifier("agent-profile"),
        custom("name", vec![identity.name.clone()]),
        custom("model", vec![identity.model.clone()]),
        custom(
            "autonomy",
            vec![identity.autonomy_level.nip_sa_word().to_owned()],
        ),
        custom(
            "threshold",
            vec![group.threshold().to_string(), group.total().to_string()],
        ),
    ];
    tags.extend(
        group
            .signer_pubkeys()
            .into_iter()
            .map(|key| custom("signer", vec![key])),
    );
    if let Some(operator) = &identity.operator_pubkey {
        let operator = parse_public_key(operator).map_err(|e| ThresholdError::Profile {
            reason: format!("operator key: {e}"),
        })?;
        tags.push(custom("operator", vec![operator.to_hex()]));
    }
    Ok(EventBuilder::new(Kind::Custom(AGENT_PROFILE_KIND), "")
        .tags(tags)
        .custom_created_at(Timestamp::from_secs(created_at))
        .build(group.public_key()))
}

/// Reads an agent profile back into an [`AgentIdentity`], after checking its signature, its
/// kind, and that it describes a threshold key whose group key is the event's author.
pub fn parse_agent_profile(event: &Event) -> Result<AgentIdentity, ThresholdError> {
    let bad = |reason: String| ThresholdError::Profile { reason };
    event
        .verify()
        .map_err(|e| bad(format!("the event does not verify: {e}")))?;
    if event.kind.as_u16() != AGENT_PROFILE_KIND {
        return Err(bad(format!(
            "kind {}, expected {AGENT_PROFILE_KIND}",
            event.kind.as_u16()
        )));
    }
    let values = |name: &str| -> Vec<&[String]> {
        event
            .tags
            .iter()
            .map(|t| t.as_slice())
            .filter(|t| t.first().is_some_and(|k| k == name))
            .map(|t| &t[1..])
            .collect()
    };
    let single = |name: &str| -> Result<String, ThresholdError> {
        match values(name).as_slice() {
            [[value, ..]] => Ok(value.clone()),
            _ => Err(bad(format!("expected exactly one `{name}` tag"))),
        }
    };
    let autonomy: AutonomyLevel = single("autonomy")?
        .parse()
        .map_err(|e: ao_identity::ParseAutonomyError| bad(e.to_string()))?;
    let (threshold, total) = match values("threshold").as_slice() {
        [[t, n, ..]] => (
            t.parse::<u32>()
                .map_err(|_| bad(format!("threshold `{t}` is not a number")))?,
            n.parse::<u32>()
                .map_err(|_| bad(format!("total `{n}` is not a number")))?,
        ),
        _ => return Err(bad("expected one `threshold` tag with two values".into())),
    };
    let signers: Vec<String> = values("signer")
        .into_iter()
        .filter_map(|v| v.first().cloned())
        .collect();
    let config = ThresholdConfig::new(threshold, total)
        .with_signers(signers)
        .with_group_pubkey(event.pubkey.to_hex());
    let mut identity = AgentIdentity::new(event.pubkey.to_hex(), single("name")?, single("model")?)
        .with_autonomy(autonomy)
        .with_threshold(config);
    match values("operator").as_slice() {
        [] => {}
        [[operator, ..]] => identity = identity.with_operator(operator.clone()),
        _ => return Err(bad("more than one `operator` tag".into())),
    }
    identity
        .validate()
        .map_err(ThresholdError::ProfileIdentity)?;
    Ok(identity)
}
