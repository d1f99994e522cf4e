use std::fmt;

use ao_audit::AuditEvent;
use nostr::Event;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::ApprovalError;
use crate::signed::{ParsedDecision, parse_decision_event};

/// A request waiting for a decision, as the spec shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PendingApproval {
    /// The request's id: 128 random bits as 32 lowercase hex characters.
    pub request_id: String,
    /// What the agent wants to do, such as `purchase_skill`.
    pub action_type: String,
    /// Why, in the agent's words.
    pub description: String,
    /// What it is expected to cost, in sats.
    pub cost_estimate_sats: u64,
    /// When it was filed, in Unix seconds.
    pub created_at: u64,
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    /// Waiting for a decision.
    Pending,
    /// Approved: the action may go ahead.
    Approved,
    /// Rejected: the action must not happen.
    Rejected,
    /// Not decided in time; counts as rejected.
    Expired,
}

impl ApprovalStatus {
    /// The status as a word: `pending`, `approved`, `rejected` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
            ApprovalStatus::Expired => "expired",
        }
    }

    /// Whether the action may go ahead. Only [`ApprovalStatus::Approved`] allows it.
    pub fn allows(self) -> bool {
        self == ApprovalStatus::Approved
    }
}

impl fmt::Display for ApprovalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a decision says: approve or reject. An approval event says `approved`, a rejection
/// `denied`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Let the request go ahead.
    Approve,
    /// Refuse it.
    Reject,
}

impl Verdict {
    /// The word a kind-39213 decision event carries: `approved` or `denied`.
    pub fn event_word(self) -> &'static str {
        match self {
            Verdict::Approve => "approved",
            Verdict::Reject => "denied",
        }
    }

    /// The verdict an event's word names, if it names one.
    pub fn from_event_word(word: &str) -> Option<Self> {
        match word {
            "approved" => Some(Verdict::Approve),
            "denied" => Some(Verdict::Reject),
            _ => None,
        }
    }
}

/// Stored as the boolean `approved`, as records were before verdicts had a type.
mod verdict_as_approved {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Verdict;

    pub(super) fn serialize<S: Serializer>(verdict: &Verdict, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(*verdict == Verdict::Approve)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Verdict, D::Error> {
        Ok(if bool::deserialize(d)? {
            Verdict::Approve
        } else {
            Verdict::Reject
        })
    }
}

/// A final decision: what, by whom, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// [`ApprovalStatus::Approved`], [`ApprovalStatus::Rejected`] or [`ApprovalStatus::Expired`].
    pub status: ApprovalStatus,
    /// Who decided: the signing keys (hex), `local operator` for an unsigned decision, or `expiry`.
    pub decided_by: Vec<String>,
    /// When, in Unix seconds.
    pub decided_at: u64,
    /// Why, if given.
    pub reason: Option<String>,
}

/// One guardian's signed vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The guardian's public key, hex.
    pub pubkey: String,
    /// What it says.
    #[serde(rename = "approved", with = "verdict_as_approved")]
    pub verdict: Verdict,
    /// The id of the signed event, hex.
    pub event_id: String,
    /// When the event was signed, in Unix seconds.
    pub signed_at: u64,
    /// The reason in the event's content, if any.
    pub reason: Option<String>,
    /// The signed event itself (JSON), so that whoever reads the vote back from storage can check
    /// it again instead of trusting the row.
    #[serde(default)]
    pub event: Option<String>,
}

/// Who may decide a request, fixed when it is filed so that any process holding the record (the
/// CLI, a restarted server) applies the same rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalPolicy {
    /// Public keys (hex) whose signed decisions count: the guardians, or else the operator.
    pub approvers: Vec<String>,
    /// Distinct approvals needed.
    pub required: u32,
    /// Whether an unsigned approval counts. Unsigned rejections always count: refusing is safe.
    pub allow_unsigned: bool,
    /// How old a signed decision may be, in seconds.
    pub max_event_age_secs: u64,
}

/// A request with everything that happened to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// The request.
    pub request: PendingApproval,
    /// The name of the agent that filed it.
    pub agent: String,
    /// When it expires if undecided, in Unix seconds.
    pub expires_at: u64,
    /// Who may decide it.
    pub policy: ApprovalPolicy,
    /// Signed votes so far.
    pub votes: Vec<Vote>,
    /// The decision, once made.
    pub decision: Option<Decision>,
    /// When an approved request was used up by the call it allowed. An approval allows one call,
    /// and this is kept with the request, so a restart does not make it usable again.
    #[serde(default)]
    pub used_at: Option<u64>,
    /// The hash of the request it was filed for (hex SHA-256 of its canonical form), when the
    /// action has one: the approval covers that request and no other.
    #[serde(default)]
    pub request_hash: Option<String>,
    /// Bumped by every save: a save names the version it read, and a store refuses it when the
    /// stored record has moved on (compare-and-swap), so no stale copy overwrites a decision.
    #[serde(default)]
    pub version: u64,
}

/// A call presented under an approval: what it is, and how long an approval stays usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Use<'a> {
    /// The action it performs.
    pub action: &'a str,
    /// What it is estimated at, in sats.
    pub cost_sats: u64,
    /// The hash of the request presented (see [`ApprovalRecord::request_hash`]).
    pub request_hash: Option<&'a str>,
    /// How long after the decision an approval may be used, in seconds.
    pub usable_for_secs: u64,
}

/// Clock skew tolerated on a signed decision's timestamp, in seconds.
const SKEW_SECS: u64 = 60;

/// A fresh request id: 128 bits from the operating system's random source, as 32 hex characters.
pub fn new_request_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl ApprovalRecord {
    /// The request's id.
    pub fn id(&self) -> &str {
        &self.request.request_id
    }

    /// Where the request stands at `now`: its decision, or `Expired` once `now >= expires_at`, or
    /// `Pending`.
    pub fn status_at(&self, now: u64) -> ApprovalStatus {
        match &self.decision {
            Some(d) => d.status,
            None if now >= self.expires_at => ApprovalStatus::Expired,
            None => ApprovalStatus::Pending,
        }
    }

    /// Records the expiry as a decision if the request is past it and undecided. Returns the
    /// audit event when it changed.
    pub fn expire_if_due(&mut self, now: u64) -> Option<AuditEvent> {
        if self.decision.is_some() || now < self.expires_at {
            return None;
        }
        self.decision = Some(Decision {
            status: ApprovalStatus::Expired,
            decided_by: vec!["expiry".into()],
            decided_at: self.expires_at,
            reason: None,
        });
        Some(self.audit_event("approval.expired", now, json!({})))
    }

    fn ensure_pending(&self, now: u64) -> Result<(), ApprovalError> {
        match self.status_at(now) {
            ApprovalStatus::Pending => Ok(()),
            ApprovalStatus::Expired => Err(ApprovalError::Expired {
                id: self.id().to_owned(),
                expired_at: self.expires_at,
            }),
            status => Err(ApprovalError::AlreadyDecided {
                id: self.id().to_owned(),
                status,
            }),
        }
    }

    /// An unsigned decision by `decided_by`. Refused if the request is not pending, or if it is an
    /// approval and the policy wants signatures.
    pub fn decide_unsigned(
        &mut self,
        verdict: Verdict,
        decided_by: &str,
        reason: Option<String>,
        now: u64,
    ) -> Result<AuditEvent, ApprovalError> {
        self.ensure_pending(now)?;
        let approve = verdict == Verdict::Approve;
        if approve && !self.policy.allow_unsigned {
            return Err(ApprovalError::SignatureRequired {
                id: self.id().to_owned(),
                who: self.approvers_description(),
            });
        }
        let status = if approve {
            ApprovalStatus::Approved
        } else {
            ApprovalStatus::Rejected
        };
        self.decision = Some(Decision {
            status,
            decided_by: vec![decided_by.to_owned()],
            decided_at: now,
            reason: reason.clone(),
        });
        Ok(self.audit_event(
            if approve {
                "approval.approved"
            } else {
                "approval.rejected"
            },
            now,
            json!({"decided_by": decided_by, "reason": reason, "signed": false}),
        ))
    }

    /// Applies a signed decision event. `expect` is the verdict the caller means to apply (an
    /// approval call refuses a denial event, and the reverse), `None` to take whatever the event
    /// says.
    ///
    /// The event must verify, be of kind 39213, name this request, come from an approver, be
    /// fresh, and be the first vote of its author. An approval counts towards the policy's
    /// `required`; a denial rejects at once. Returns the status after the vote and the audit event.
    pub fn apply_signed(
        &mut self,
        event: &Event,
        expect: Option<Verdict>,
        now: u64,
    ) -> Result<(ApprovalStatus, AuditEvent), ApprovalError> {
        let vote = self.check_vote(event, expect, now)?;
        let author = vote.pubkey.clone();
        let (verdict, reason) = (vote.verdict, vote.reason.clone());
        self.votes.push(vote);
        let approvals: Vec<String> = self
            .votes
            .iter()
            .filter(|v| v.verdict == Verdict::Approve)
            .map(|v| v.pubkey.clone())
            .collect();
        let required = usize::try_from(self.policy.required).unwrap_or(usize::MAX);
        if verdict == Verdict::Reject {
            self.decision = Some(Decision {
                status: ApprovalStatus::Rejected,
                decided_by: vec![author.clone()],
                decided_at: now,
                reason: reason.clone(),
            });
        } else if approvals.len() >= required {
            self.decision = Some(Decision {
                status: ApprovalStatus::Approved,
                decided_by: approvals.clone(),
                decided_at: now,
                reason: reason.clone(),
            });
        }
        let status = self.status_at(now);
        let kind = match status {
            ApprovalStatus::Approved => "approval.approved",
            ApprovalStatus::Rejected => "approval.rejected",
            _ => "approval.vote",
        };
        let audit = self.audit_event(
            kind,
            now,
            json!({
                "signed": true,
                "signer": author,
                "vote": verdict.event_word(),
                "event_id": event.id.to_hex(),
                "approvals": approvals.len(),
                "required": self.policy.required,
                "reason": reason,
            }),
        );
        Ok((status, audit))
    }

    /// The vote `event` casts on this request, once every check passed: it verifies, decides
    /// this request as `expect` says, the request is pending, the author is an approver who has
    /// not voted yet, and the event is fresh.
    fn check_vote(
        &self,
        event: &Event,
        expect: Option<Verdict>,
        now: u64,
    ) -> Result<Vote, ApprovalError> {
        let ParsedDecision {
            request_id,
            verdict,
            reason,
        } = parse_decision_event(event)?;
        if request_id != self.id() {
            return Err(ApprovalError::WrongRequest {
                named: request_id,
                expected: self.id().to_owned(),
            });
        }
        if let Some(expected) = expect
            && expected != verdict
        {
            return Err(ApprovalError::DecisionMismatch {
                found: verdict.event_word(),
                expected: match expected {
                    Verdict::Approve => "approve_signed",
                    Verdict::Reject => "reject_signed",
                },
            });
        }
        self.ensure_pending(now)?;
        let author = event.pubkey.to_hex();
        if !self.policy.approvers.contains(&author) {
            return Err(ApprovalError::UnauthorizedSigner { pubkey: author });
        }
        let signed_at = event.created_at.as_secs();
        let not_before = self
            .request
            .created_at
            .saturating_sub(SKEW_SECS)
            .max(now.saturating_sub(self.policy.max_event_age_secs));
        let not_after = now.saturating_add(SKEW_SECS);
        if signed_at < not_before || signed_at > not_after {
            return Err(ApprovalError::StaleEvent {
                created_at: signed_at,
                not_before,
                not_after,
            });
        }
        if self.votes.iter().any(|v| v.pubkey == author) {
            return Err(ApprovalError::DuplicateVote { pubkey: author });
        }
        Ok(Vote {
            pubkey: author,
            verdict,
            event_id: event.id.to_hex(),
            signed_at,
            reason,
            event: Some(nostr::JsonUtil::as_json(event)),
        })
    }

    /// Uses the approval for one call of `action` estimated at `cost_sats`: it must be approved,
    /// not used before, for the same action, and for at least that cost. Returns the audit event.
    pub fn consume(&mut self, call: &Use<'_>, now: u64) -> Result<AuditEvent, ApprovalError> {
        let (action, cost_sats) = (call.action, call.cost_sats);
        let id = self.id().to_owned();
        let status = self.status_at(now);
        if status != ApprovalStatus::Approved {
            return Err(ApprovalError::NotApproved { id, status });
        }
        if let Some(used_at) = self.used_at {
            return Err(ApprovalError::AlreadyUsed { id, used_at });
        }
        if let Some(decided_at) = self.decision.as_ref().map(|d| d.decided_at) {
            let lapsed_at = decided_at.saturating_add(call.usable_for_secs);
            if now >= lapsed_at {
                return Err(ApprovalError::Lapsed {
                    id,
                    decided_at,
                    lapsed_at,
                });
            }
        }
        if let Some(filed_for) = &self.request_hash
            && call.request_hash != Some(filed_for.as_str())
        {
            return Err(ApprovalError::Mismatch { id });
        }
        if self.request.action_type != action || self.request.cost_estimate_sats < cost_sats {
            return Err(ApprovalError::DoesNotCover {
                id,
                approved_action: self.request.action_type.clone(),
                approved_sats: self.request.cost_estimate_sats,
                action: action.to_owned(),
                cost_sats,
            });
        }
        self.used_at = Some(now);
        Ok(self.audit_event(
            "approval.used",
            now,
            json!({"action": action, "cost_estimate_sats": cost_sats}),
        ))
    }

    /// The audit event for this request's filing.
    pub(crate) fn filed_event(&self) -> AuditEvent {
        self.audit_event(
            "approval.requested",
            self.request.created_at,
            json!({
                "action_type": self.request.action_type,
                "description": self.request.description,
                "cost_estimate_sats": self.request.cost_estimate_sats,
                "expires_at": self.expires_at,
                "approvers": self.policy.approvers,
                "required": self.policy.required,
            }),
        )
    }

    fn audit_event(&self, kind: &str, now: u64, mut detail: serde_json::Value) -> AuditEvent {
        if let Some(map) = detail.as_object_mut() {
            map.insert("request_id".into(), json!(self.id()));
        }
        AuditEvent::new(now, kind, self.agent.clone(), detail)
    }

    fn approvers_description(&self) -> String {
        match self.policy.approvers.len() {
            0 => "nobody (no operator key or guardian is configured)".into(),
            1 => format!("the operator `{}`", self.policy.approvers[0]),
            n => format!("{} of the {n} guardians", self.policy.required),
        }
    }
}
