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
    /// limited (429) or a server error (5xx). A malformed reply or a client error (4xx) is not.
    pub fn is_retryable(&self) -> bool {
        match self {
            BackendError::Connect { .. }
            | BackendError::Interrupted { .. }
            | BackendError::Timeout { .. } => true,
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
            | BackendError::BadEndpoint { .. } => false,
            BackendError::Status { status, .. } => *status >= 500,
            BackendError::Interrupted { .. }
            | BackendError::Timeout { .. }
            | BackendError::Malformed { .. }
            | BackendError::Truncated { .. } => true,
        }
    }
}
