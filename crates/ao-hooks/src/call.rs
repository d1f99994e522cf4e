use std::any::{Any, TypeId};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use ao_types::{AgentName, BackendProvider, TokenUsage};

static NEXT_CALL: AtomicU64 = AtomicU64::new(1);

/// A tool call's unique id within the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(u64);

impl CallId {
    /// The id as a number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call-{}", self.0)
    }
}

/// Values hooks attach to a call for their own later use, one per type (a budget reservation,
/// say). Each hook keeps its values in a private type, so hooks cannot read or overwrite each
/// other's. A call carries few values, so they sit in a short list.
#[derive(Default)]
pub struct Extensions {
    values: Vec<(TypeId, Box<dyn Any + Send + Sync>)>,
}

impl Extensions {
    /// Stores `value`, replacing the value of the same type.
    pub fn insert<T: Any + Send + Sync>(&mut self, value: T) {
        let id = TypeId::of::<T>();
        match self.values.iter_mut().find(|(t, _)| *t == id) {
            Some((_, slot)) => *slot = Box::new(value),
            None => self.values.push((id, Box::new(value))),
        }
    }

    /// The value of type `T`, if any.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        let id = TypeId::of::<T>();
        self.values
            .iter()
            .find(|(t, _)| *t == id)
            .and_then(|(_, b)| b.downcast_ref())
    }

    /// Removes and returns the value of type `T`, if any.
    pub fn remove<T: Any + Send + Sync>(&mut self) -> Option<T> {
        let id = TypeId::of::<T>();
        let at = self.values.iter().position(|(t, _)| *t == id)?;
        self.values.swap_remove(at).1.downcast().ok().map(|b| *b)
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extensions")
            .field("len", &self.values.len())
            .finish()
    }
}

/// A tool call, with the context the runtime sets.
///
/// The agent is fixed by [`ToolCall::new`] and has a getter but no setter: hooks charge and audit
/// the agent the runtime names, never one named in `parameters`.
#[derive(Debug)]
pub struct ToolCall {
    agent: AgentName,
    id: CallId,
    /// The tool, such as `web_search`.
    pub tool_name: String,
    /// The tool's arguments, as the agent gave them.
    pub parameters: serde_json::Value,
    /// When the agent's session started, in Unix seconds (default 0: one session since the epoch).
    pub session_start: u64,
    /// The call's expected cost in sats, if known. `CostTrackingHook` fills it in when empty.
    pub cost_estimate_sats: Option<u64>,
    /// The most tokens the call may produce, used to estimate its cost.
    pub max_tokens: Option<u64>,
    /// An approval obtained for this call, presented on a retry after `NeedsApproval`.
    pub approval_id: Option<String>,
    /// Values hooks attach to the call.
    pub extensions: Extensions,
    /// Positions (in the manager's order) of the hooks whose `before_tool` ran on this call.
    pub(crate) ran_before: Vec<usize>,
}

impl ToolCall {
    /// A call of `tool_name` with `parameters` by `agent`, as the runtime that runs the agent
    /// knows it.
    pub fn new(
        agent: AgentName,
        tool_name: impl Into<String>,
        parameters: serde_json::Value,
    ) -> Self {
        Self {
            agent,
            id: CallId(NEXT_CALL.fetch_add(1, Ordering::Relaxed)),
            tool_name: tool_name.into(),
            parameters,
            session_start: 0,
            cost_estimate_sats: None,
            max_tokens: None,
            approval_id: None,
            extensions: Extensions::default(),
            ran_before: Vec::new(),
        }
    }

    /// Sets the session start.
    pub fn with_session_start(mut self, session_start: u64) -> Self {
        self.session_start = session_start;
        self
    }

    /// Sets the cost estimate.
    pub fn with_cost_estimate(mut self, sats: u64) -> Self {
        self.cost_estimate_sats = Some(sats);
        self
    }

    /// Sets the token limit.
    pub fn with_max_tokens(mut self, tokens: u64) -> Self {
        self.max_tokens = Some(tokens);
        self
    }

    /// Presents an approval obtained for this call.
    pub fn with_approval(mut self, request_id: impl Into<String>) -> Self {
        self.approval_id = Some(request_id.into());
        self
    }

    /// The agent making the call, as the runtime set it.
    pub fn agent(&self) -> &AgentName {
        &self.agent
    }

    /// The call's unique id.
    pub fn id(&self) -> CallId {
        self.id
    }
}

/// What a tool returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolOutput {
    /// The tool's result.
    pub content: String,
    /// Whether the tool failed.
    pub is_error: bool,
    /// The tokens the backend reported, if the tool used one. `None` means nothing was spent.
    pub usage: Option<TokenUsage>,
    /// The backend that answered, if it was not the agent's routed one (after a fallback).
    pub backend: Option<BackendProvider>,
    /// Sats the tool spent directly (a payment, a paid API), reported by the tool. Charged on top
    /// of any token usage.
    pub spent_sats: Option<u64>,
    /// The cost recorded for the call, filled in by `CostTrackingHook`.
    pub cost_sats: Option<u64>,
}

impl ToolOutput {
    /// A successful output with `content` that spent nothing.
    pub fn new(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            ..Self::default()
        }
    }

    /// A failed output with `content`.
    pub fn error(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            is_error: true,
            ..Self::default()
        }
    }

    /// Sets the usage the backend reported.
    pub fn with_usage(mut self, usage: TokenUsage) -> Self {
        self.usage = Some(usage);
        self
    }

    /// Sets the sats the tool spent directly.
    pub fn with_spent_sats(mut self, sats: u64) -> Self {
        self.spent_sats = Some(sats);
        self
    }

    /// Sets the backend that answered.
    pub fn with_backend(mut self, backend: BackendProvider) -> Self {
        self.backend = Some(backend);
        self
    }
}

/// A session starting or ending.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A session of `agent` started at `session_start`.
    Started {
        /// The agent.
        agent: AgentName,
        /// Unix seconds.
        session_start: u64,
    },
    /// The session of `agent` that started at `session_start` ended.
    Ended {
        /// The agent.
        agent: AgentName,
        /// Unix seconds.
        session_start: u64,
    },
}
