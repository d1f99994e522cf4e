use ao_approvals::{ApprovalError, ApprovalStatus};
use ao_budget::BudgetError;
use ao_routing::RoutingError;
use ao_routing::http::FallbackError;
use ao_types::ClockError;

/// Why an orchestrated call did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrchestratorError {
    /// The agent is not configured.
    #[error("agent `{agent}` is not configured")]
    UnknownAgent {
        /// The agent named.
        agent: String,
    },
    /// No backend can serve the agent.
    #[error(transparent)]
    Routing(#[from] RoutingError),
    /// The budget refused the call; nothing was sent to a backend.
    #[error(transparent)]
    Budget(BudgetError),
    /// The call needs an operator's approval: approve request `request_id`, then retry with it.
    #[error("the call needs approval: request `{request_id}` waits for an operator")]
    NeedsApproval {
        /// The approval request filed.
        request_id: String,
    },
    /// The approval presented or waited for does not allow the call.
    #[error("approval `{request_id}` does not allow this call: {reason}")]
    NotApproved {
        /// The request.
        request_id: String,
        /// Its status or why it does not cover the call.
        reason: String,
        /// Its status, when known.
        status: Option<ApprovalStatus>,
    },
    /// The approval workflow failed.
    #[error(transparent)]
    Approval(#[from] ApprovalError),
    /// No backend answered.
    #[error(transparent)]
    Backend(#[from] FallbackError),
    /// A hook blocked the tool call.
    #[error("the tool call was blocked: {reason}")]
    ToolBlocked {
        /// Why.
        reason: String,
    },
    /// The tool call waits for approval `request_id`.
    #[error("the tool call needs approval: request `{request_id}` waits for an operator")]
    ToolNeedsApproval {
        /// The approval request filed.
        request_id: String,
    },
    /// The time could not be read.
    #[error(transparent)]
    Clock(#[from] ClockError),
    /// Setting the orchestrator up failed.
    #[error("cannot start the orchestrator: {0}")]
    Setup(String),
}

impl From<BudgetError> for OrchestratorError {
    fn from(error: BudgetError) -> Self {
        OrchestratorError::Budget(error)
    }
}
