use std::time::Duration;

/// A backend could not answer. Messages never carry an API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The backend could not be reached.
    #[error("backend `{provider}` cannot be reached: {reason}")]
    Connect {
        /// The provider.
        provider: String,
        /// What failed.
        reason: String,
    },
    /// The request was sent, and the exchange broke before a reply (the connection was reset,
    /// say): the backend may have worked on it.
    #[error("backend `{provider}` was sent the request but the exchange broke: {reason}")]
    Interrupted {
        /// The provider.
        provider: String,
        /// What failed.
        reason: String,
    },
    /// The backend did not answer in time.
    #[error("backend `{provider}` did not answer within {after:?}")]
    Timeout {
        /// The provider.
        provider: String,
        /// The time limit.
        after: Duration,
    },
    /// The backend answered with an error status.
    #[error("backend `{provider}` answered {status}: {message}")]
    Status {
        /// The provider.
        provider: String,
        /// The HTTP status.
        status: u16,
        /// The start of the backend's message.
        message: String,
        /// How long the backend asked to wait before retrying, if it said.
        retry_after: Option<Duration>,
    },
    /// The reply could not be read.
    #[error("backend `{provider}` sent a malformed reply: {reason}")]
    Malformed {
        /// The provider.
        provider: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A streamed reply stopped before its end.
    #[error("backend `{provider}` cut the stream off after {received_bytes} bytes of text")]
    Truncated {
        /// The provider.
        provider: String,
        /// Text bytes received before the cut.
        received_bytes: usize,
    },
    /// The environment variable that should hold the API key is not set.
    #[error(
        "backend `{provider}` needs an API key in the environment variable `{variable}`, which is not set"
    )]
    MissingApiKey {
        /// The provider.
        provider: String,
        /// The variable.
        variable: String,
    },
    /// The backend did no billable work and was paid nothing: a data vending machine that stayed
    /// silent, asked more than the bid, sent an invoice that does not match its `amount` tag, or
    /// whose invoice the wallet refused to pay. What was reserved for the attempt is released.
    #[error("backend `{provider}` was paid nothing: {reason}")]
    Unpaid {
        /// The provider.
        provider: String,
        /// Why nothing was paid, or why no answer came.
        reason: String,
    },
    /// The backend was paid (or a payment to it may have gone through) and sent no result: the
    /// attempt is charged `paid_sats`, what left the wallet, fees included.
    #[error("backend `{provider}` was paid {paid_sats} sats and sent no result: {reason}")]
    PaidUnanswered {
        /// The provider.
        provider: String,
        /// What the payment cost, fees included, in whole sats rounded up.
        paid_sats: u64,
        /// What happened.
        reason: String,
    },
    /// The backend's endpoint is not a valid URL.
    #[error("backend `{provider}` has an invalid endpoint `{endpoint}`")]
    BadEndpoint {
        /// The provider.
        provider: String,
        /// The endpoint.
        endpoint: String,
    },
}

impl BackendError {
    /// Whether trying again (later, or elsewhere) may succeed: unreachable, timed out, rate
    /// limited (429), a server error (5xx), or a data vending machine paid nothing. A malformed
    /// reply, a client error (4xx) or a paid job without a result is not.
    pub fn is_retryable(&self) -> bool {
        match self {
            BackendError::Connect { .. }
            | BackendError::Interrupted { .. }
            | BackendError::Timeout { .. }
            | BackendError::Unpaid { .. } => true,
            BackendError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// Whether the provider may have billed the attempt that failed this way. Once a request has
    /// reached a provider it may have been processed (and billed) whatever came back: a timeout,
    /// a broken exchange, a 5xx, a malformed or cut reply. Only a refusal that did no work is
    /// free: the request never left (unreachable, no key, a bad endpoint), or the provider
    /// refused it before processing (429, another 4xx). See `docs/CHARGES.md`.
    pub fn may_have_billed(&self) -> bool {
        match self {
            BackendError::Connect { .. }
            | BackendError::MissingApiKey { .. }
            | BackendError::BadEndpoint { .. }
            | BackendError::Unpaid { .. } => false,
            BackendError::Status { status, .. } => *status >= 500,
            BackendError::Interrupted { .. }
            | BackendError::Timeout { .. }
            | BackendError::Malformed { .. }
            | BackendError::Truncated { .. }
            | BackendError::PaidUnanswered { .. } => true,
        }
    }

    /// What the failed attempt cost, when the backend knows it exactly (a data vending machine
    /// paid over Lightning): it is charged this rather than its estimate. `None` for backends
    /// billed per token, whose failed attempts are charged their estimate.
    pub fn billed_sats(&self) -> Option<u64> {
        match self {
            BackendError::PaidUnanswered { paid_sats, .. } => Some(*paid_sats),
            _ => None,
        }
    }
}
