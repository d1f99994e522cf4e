use std::error::Error as StdError;

use async_trait::async_trait;

use crate::call::{SessionEvent, ToolCall, ToolOutput};

/// What a hook says about a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookResult {
    /// Go on.
    Continue,
    /// Stop: the tool must not run (before) or its output must not be used (after).
    Block {
        /// Why, in words an operator or the agent can act on.
        reason: String,
    },
    /// Stop until an operator decides the approval request `request_id`.
    NeedsApproval {
        /// The approval request filed for this call.
        request_id: String,
    },
}

impl HookResult {
    /// A block with `reason`.
    pub fn block(reason: impl Into<String>) -> Self {
        HookResult::Block {
            reason: reason.into(),
        }
    }

    /// Whether the call must not go on: [`HookResult::Block`] or [`HookResult::NeedsApproval`].
    pub fn is_blocked(&self) -> bool {
        !matches!(self, HookResult::Continue)
    }
}

/// A hook failed. The manager turns it into a block naming the hook and the whole chain of
/// causes: fail closed.
///
/// It is transparent: its message and source are those of the error it holds.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct HookError(pub Box<dyn StdError + Send + Sync + 'static>);

impl HookError {
    /// A hook error caused by `source`.
    pub fn new(source: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        HookError(source.into())
    }
}

/// One enforcement point around tool calls. Every method has a default that does nothing.
#[async_trait]
pub trait Hook: Send + Sync {
    /// A unique name, used to enable, disable and report the hook.
    fn name(&self) -> &str;

    /// Higher runs first before the tool, last after it. Default 0.
    fn priority(&self) -> i32 {
        0
    }

    /// Runs before the tool. May change the call.
    async fn before_tool(&self, call: &mut ToolCall) -> Result<HookResult, HookError> {
        let _ = call;
        Ok(HookResult::Continue)
    }

    /// Undoes what `before_tool` did for `call`, because a later hook stopped it with `outcome`
    /// (a [`HookResult::Block`] or [`HookResult::NeedsApproval`]).
    async fn abort_tool(&self, call: &ToolCall, outcome: &HookResult) {
        let _ = (call, outcome);
    }

    /// Runs after the tool. May change the output.
    async fn after_tool(
        &self,
        call: &ToolCall,
        output: &mut ToolOutput,
    ) -> Result<HookResult, HookError> {
        let _ = (call, output);
        Ok(HookResult::Continue)
    }

    /// Runs when a session starts or ends.
    async fn on_session(&self, event: &SessionEvent) -> Result<(), HookError> {
        let _ = event;
        Ok(())
    }
}
