//! The audit entry of a settled completion.

use ao_audit::AuditEvent;
use ao_types::Report;
use serde::Serialize;

use super::Settlement;

/// Appends the audit entry of settlement `s`, dated `now`.
pub(super) fn audit_completion(
    audit: &dyn ao_audit::AuditLog,
    now: u64,
    s: &Settlement,
    overage: u64,
) {
    let detail = CompletionAudit {
        backend: Some(s.provider.as_str()),
        outcome: s.outcome.as_str(),
        input_tokens: s.usage.input_tokens,
        output_tokens: s.usage.output_tokens,
        cost_sats: s.cost_sats,
        estimate_sats: s.estimate_sats,
        estimated_usage: s.estimated,
        billed_failed_attempts: s.billed_failures,
        overage_sats: overage,
        approval_id: s.approval_id.as_deref(),
        error: s.error.clone(),
    };
    let appended = AuditEvent::from_serialize(now, "completion", s.agent.as_str(), &detail)
        .map_err(|e| Report::new(&e).to_string())
        .and_then(|event| audit.append(event).map_err(|e| Report::new(&e).to_string()));
    if let Err(error) = appended {
        tracing::error!(agent = s.agent, error, "completion not audited");
    }
}

#[derive(Serialize)]
pub(super) struct CompletionAudit<'a> {
    pub(super) backend: Option<&'a str>,
    pub(super) outcome: &'a str,
    pub(super) input_tokens: u64,
    pub(super) output_tokens: u64,
    pub(super) cost_sats: u64,
    pub(super) estimate_sats: u64,
    pub(super) estimated_usage: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub(super) billed_failed_attempts: u32,
    #[serde(skip_serializing_if = "is_zero_sats")]
    pub(super) overage_sats: u64,
    pub(super) approval_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) error: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero_sats(n: &u64) -> bool {
    *n == 0
}
