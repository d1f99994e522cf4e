//! What a process believes of a record it read back from storage. The database is not a way in:
//! an agent that can write the file could otherwise approve itself with one `UPDATE`. So a
//! stored decision is checked again, under the policy in force now: signed votes by their
//! events, which are stored with them; an unsigned approval only where that policy allows
//! unsigned approvals. Rejections and expiries always count: refusing is safe.

use nostr::{Event, JsonUtil};

use crate::record::{ApprovalPolicy, ApprovalRecord, ApprovalStatus, Decision, Verdict, Vote};
use crate::signed::parse_decision_event;

impl ApprovalRecord {
    /// This record as it stands under `policy` (the policy in force), trusting nothing it says
    /// that cannot be checked: votes whose signed event does not verify, does not name this
    /// request, or whose author is no approver now are dropped, and a decision stands only if
    /// what remains supports it.
    pub fn reverified(&self, policy: &ApprovalPolicy) -> ApprovalRecord {
        let mut record = self.clone();
        record.policy = policy.clone();
        record.votes = self
            .votes
            .iter()
            .filter(|vote| vote_verifies(vote, self.id(), policy))
            .cloned()
            .collect();
        record.decision = self
            .decision
            .as_ref()
            .and_then(|decision| supported(decision, &record.votes, policy));
        if record.decision.as_ref().map(|d| d.status) != Some(ApprovalStatus::Approved) {
            record.used_at = None;
        }
        record
    }

    /// Whether nothing more can happen to the request at `now`: rejected, expired, used, or
    /// approved longer ago than an approval stays usable (`usable_for_secs`). A process may
    /// forget such a request; the store keeps it.
    pub fn is_settled_at(&self, now: u64, usable_for_secs: u64) -> bool {
        match self.status_at(now) {
            ApprovalStatus::Pending => false,
            ApprovalStatus::Approved => {
                self.used_at.is_some()
                    || self
                        .decision
                        .as_ref()
                        .is_some_and(|d| now >= d.decided_at.saturating_add(usable_for_secs))
            }
            ApprovalStatus::Rejected | ApprovalStatus::Expired => true,
        }
    }

    /// Takes up what `stored` (reverified) says about this request, moving only forward: a
    /// decision or a use this copy knows is never undone by a stored copy that lacks it. The
    /// result carries the stored version, so that the next save compares against the store.
    pub fn merged_forward(&self, stored: ApprovalRecord) -> ApprovalRecord {
        let mut merged = stored;
        if merged.decision.is_none() && self.decision.is_some() {
            merged.decision.clone_from(&self.decision);
            merged.votes.clone_from(&self.votes);
        }
        if merged.used_at.is_none() {
            merged.used_at = self.used_at;
        }
        merged
    }
}

/// Whether `vote` is backed by its own signed event, for request `id`, by an approver of `policy`.
fn vote_verifies(vote: &Vote, id: &str, policy: &ApprovalPolicy) -> bool {
    let Some(event) = vote.event.as_deref().and_then(|j| Event::from_json(j).ok()) else {
        return false;
    };
    let Ok(parsed) = parse_decision_event(&event) else {
        return false;
    };
    let author = event.pubkey.to_hex();
    parsed.request_id == id
        && parsed.verdict == vote.verdict
        && author == vote.pubkey
        && event.id.to_hex() == vote.event_id
        && policy.approvers.contains(&author)
}

/// The stored `decision`, if the verified `votes` and `policy` support it.
fn supported(decision: &Decision, votes: &[Vote], policy: &ApprovalPolicy) -> Option<Decision> {
    match decision.status {
        ApprovalStatus::Rejected | ApprovalStatus::Expired => Some(decision.clone()),
        ApprovalStatus::Pending => None,
        ApprovalStatus::Approved => {
            let mut approvers: Vec<&str> = votes
                .iter()
                .filter(|v| v.verdict == Verdict::Approve)
                .map(|v| v.pubkey.as_str())
                .collect();
            approvers.sort_unstable();
            approvers.dedup();
            let required = usize::try_from(policy.required).unwrap_or(usize::MAX);
            if !approvers.is_empty() && approvers.len() >= required {
                return Some(Decision {
                    decided_by: approvers.iter().map(|k| (*k).to_owned()).collect(),
                    ..decision.clone()
                });
            }
            // An approval not backed by signatures counts only where unsigned approvals do.
            (votes.is_empty() && policy.allow_unsigned).then(|| decision.clone())
        }
    }
}
