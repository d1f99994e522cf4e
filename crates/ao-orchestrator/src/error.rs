use std::path::PathBuf;

use ao_approvals::{ApprovalError, ApprovalStatus};
use ao_budget::{BudgetError, RateError};
use ao_dvm::{InvoiceError, PaymentLedgerError, WalletError};
use ao_routing::http::{BackendError, EstimateError, FallbackError};
use ao_routing::{BackendProvider, RoutingError};
use ao_store::StoreError;
use ao_types::ClockError;

/// Why an orchestrated call did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrchestratorError {
    /// An invoice a tool asked to pay cannot be paid as it is (it does not decode, names no
    /// amount, or has expired). Nothing was reserved or paid.
    #[error("the invoice is not paid")]
    Invoice(#[source] InvoiceError),
    /// No wallet is configured to pay invoices: configure a `dvm` backend and its wallet.
    #[error("no wallet is configured: set a `dvm` backend and its wallet connection")]
    NoWallet,
    /// The wallet did not pay; what was reserved is released when it says nothing left it.
    #[error("the wallet did not pay the invoice")]
    Wallet(#[source] WalletError),
    /// The payment could not be written down, so it was not made.
    #[error("the payment was not made")]
    PaymentLedger(#[source] PaymentLedgerError),
    /// The invoice was already paid (or its payment begun) once: it is never paid twice.
    #[error("invoice `{payment_hash}` was already paid; it is never paid twice")]
    AlreadyPaid {
        /// The invoice's payment hash.
        payment_hash: String,
    },
    /// The agent is not configured.
    #[error("agent `{agent}` is not configured")]
    UnknownAgent {
        /// The agent named.
        agent: String,
    },
    /// The request cannot be estimated (a part that cannot be priced, a bad `n`), so it cannot
    /// be sent; nothing was reserved.
    #[error("the request cannot be priced before the call")]
    BadRequest(#[source] EstimateError),
    /// No backend can serve the agent.
    #[error(transparent)]
    Routing(#[from] RoutingError),
    /// The budget refused the call; nothing was sent to a backend.
    #[error(transparent)]
    Budget(BudgetError),
    /// A rate limit of the agent refused the call; nothing was reserved or sent.
    #[error(transparent)]
    RateLimited(RateError),
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
    /// The approval presented was filed for another request: an approval covers the one request
    /// it was filed for.
    #[error(
        "approval `{request_id}` was filed for another request; it covers only the request it was filed for"
    )]
    ApprovalMismatch {
        /// The approval presented.
        request_id: String,
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
    /// Every backend the agent is routed to (its route, the default, the fallbacks) is disabled
    /// or has no client.
    #[error(
        "agent `{agent}` is routed only to backends without a live client; enable one in the config"
    )]
    NoLiveBackend {
        /// The agent.
        agent: String,
    },
    /// A backend answered that has no price in the call's chain; the call was charged its
    /// estimate.
    #[error("backend `{provider}` answered but has no price in the agent's chain")]
    Unpriced {
        /// The backend.
        provider: BackendProvider,
    },
}

/// Why an orchestrator could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The data directory could not be created.
    #[error("cannot create the data directory `{}`", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The database could not be opened.
    #[error("cannot open the database")]
    Database {
        /// Why.
        #[source]
        source: StoreError,
    },
    /// A backend's client could not be built (its API key variable is unset, say).
    #[error("cannot set up backend `{provider}`")]
    Backend {
        /// The backend.
        provider: BackendProvider,
        /// Why.
        #[source]
        source: BackendError,
    },
    /// An agent's guardians are not a valid set.
    #[error("agents.{agent}: the guardians are not valid")]
    Guardians {
        /// The agent.
        agent: String,
        /// Why.
        #[source]
        source: ApprovalError,
    },
    /// An agent's approval requests could not be loaded from the database.
    #[error("cannot load the approval requests of agent `{agent}`")]
    Approvals {
        /// The agent.
        agent: String,
        /// Why.
        #[source]
        source: ApprovalError,
    },
    /// The `[signing]` section's files could not be used (the group file, the coordinator's
    /// key).
    #[error("cannot set up signing through the signer nodes ([signing])")]
    Signing {
        /// Why.
        #[source]
        source: Box<ao_signer::SignerError>,
    },
    /// No agent, or more than one, has the group key the signer nodes sign for.
    #[error(
        "[signing]: {found}; give exactly one agent `pubkey = \"{group_key}\"` (the group key), the agent whose events the nodes sign"
    )]
    SigningAgent {
        /// What was found: no agent, or which agents.
        found: String,
        /// The group key.
        group_key: String,
    },
    /// The agent's signing could not be set up.
    #[error("[signing]: cannot sign for agent `{agent}`")]
    SigningIdentity {
        /// The agent.
        agent: String,
        /// Why.
        #[source]
        source: Box<crate::signing::SigningError>,
    },
    /// Today's spend could not be loaded from the ledger.
    #[error("cannot load spend from the ledger")]
    Ledger {
        /// Why.
        #[source]
        source: BudgetError,
    },
    /// The wallet that pays `dvm` backends could not be set up.
    #[error("cannot set up the wallet that pays the `dvm` backend")]
    Wallet {
        /// Why.
        #[source]
        source: WalletError,
    },
}

impl From<EstimateError> for OrchestratorError {
    fn from(error: EstimateError) -> Self {
        OrchestratorError::BadRequest(error)
    }
}

impl From<BudgetError> for OrchestratorError {
    fn from(error: BudgetError) -> Self {
        OrchestratorError::Budget(error)
    }
}
