//! NIP-SA guardian approvals: kind 39213 events that carry an operator's or guardian's decision.
//!
//! An event decides one request. Its tags are `["d", <request id>]` and
//! `["decision", "approved" | "denied"]`; its content is the reason, possibly empty.

use nostr::{Event, EventBuilder, Keys, Kind, Tag, TagKind, Timestamp};

use crate::error::ApprovalError;
use crate::record::Verdict;

/// The NIP-SA guardian approval kind.
pub const DECISION_KIND: u16 = 39213;

/// What a decision event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedDecision {
    /// The request it decides.
    pub request_id: String,
    /// What it says.
    pub verdict: Verdict,
    /// The reason in the content, if not empty.
    pub reason: Option<String>,
}

/// Builds and signs a decision on `request_id` with `keys`, dated `created_at` (Unix seconds).
///
/// For operators holding a key: tests, examples and the `ao` CLI use it. The key never leaves
/// `keys`; only the signed event does.
pub fn build_decision_event(
    keys: &Keys,
    request_id: &str,
    verdict: Verdict,
    reason: Option<&str>,
    created_at: u64,
) -> Result<Event, ApprovalError> {
    EventBuilder::new(Kind::Custom(DECISION_KIND), reason.unwrap_or_default())
        .tags([
            Tag::identifier(request_id),
            Tag::custom(TagKind::custom("decision"), [verdict.event_word()]),
        ])
        .custom_created_at(Timestamp::from_secs(created_at))
        .sign_with_keys(keys)
        .map_err(|e| ApprovalError::BadSignature {
            reason: e.to_string(),
        })
}

/// Verifies a decision event's id and BIP-340 signature and reads what it says. It does not check
/// who signed it or when: that depends on the request.
pub fn parse_decision_event(event: &Event) -> Result<ParsedDecision, ApprovalError> {
    event.verify().map_err(|e| ApprovalError::BadSignature {
        reason: e.to_string(),
    })?;
    let kind = event.kind.as_u16();
    if kind != DECISION_KIND {
        return Err(ApprovalError::WrongKind { found: kind });
    }
    let single = |name: &'static str| -> Result<&str, ApprovalError> {
        let mut found = event
            .tags
            .iter()
            .map(|t| t.as_slice())
            .filter(|t| t.first().is_some_and(|k| k == name));
        match (found.next(), found.next()) {
            (Some([_, value, ..]), None) if !value.is_empty() => Ok(value.as_str()),
            _ => Err(ApprovalError::MissingTag { tag: name }),
        }
    };
    let request_id = single("d")?.to_owned();
    let word = single("decision")?;
    let verdict = Verdict::from_event_word(word).ok_or_else(|| ApprovalError::UnknownDecision {
        found: word.to_owned(),
    })?;
    let reason = (!event.content.is_empty()).then(|| event.content.clone());
    Ok(ParsedDecision {
        request_id,
        verdict,
        reason,
    })
}
