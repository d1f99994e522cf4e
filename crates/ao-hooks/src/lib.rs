//! Hooks: the enforcement points that run before and after every tool call.
//!
//! A [`Hook`] is a small object with one job. The [`HookManager`] runs them around a tool call in
//! a fixed order, shaped like tower's layers:
//!
//! 1. [`HookManager::dispatch_before_tool`] runs every enabled hook's `before_tool`, highest
//!    [`priority`](Hook::priority) first (ties in registration order). A hook may change the call
//!    (say, fill in its cost estimate). The first [`HookResult::Block`] or
//!    [`HookResult::NeedsApproval`] stops the chain, and every hook that already ran gets
//!    [`abort_tool`](Hook::abort_tool), in reverse order, to undo what it did for this call (a
//!    budget reservation is released). A hook that returns an error or panics blocks the call
//!    with a clear reason: fail closed.
//! 2. The runtime runs the tool only if the answer was [`HookResult::Continue`].
//! 3. [`HookManager::dispatch_after_tool`] runs `after_tool` on **every** hook, lowest priority
//!    first (the reverse of step 1, so the outermost hook sees the final output), including hooks
//!    that ran before the tool and were disabled since. Side effects that must happen (recording a
//!    cost that was spent) never depend on another hook choosing not to block.
//!
//! The built-in hooks:
//!
//! | Hook | Priority | Job |
//! |------|----------|-----|
//! | [`AuditHook`] | 1000 | one audit entry per call: agent, tool, decision, cost |
//! | [`CostTrackingHook`] | 100 | reserve the estimate before, settle the real cost after |
//! | [`ApprovalHook`] | 50 | file (and optionally wait for) an approval where autonomy requires it |
//!
//! Which agent is calling is set by the runtime in [`ToolCall::new`] and never read from the
//! call's parameters, so an agent cannot spend as another.
//!
//! What it is **not** for: the rules themselves (budgets, approvals, prices), which live in their
//! own crates; a hook applies them at the right moment.

#![forbid(unsafe_code)]

mod builtin;
mod call;
mod hook;
mod manager;

pub use builtin::{ApprovalHook, AuditHook, CostTrackingHook};
pub use call::{CallId, Extensions, SessionEvent, ToolCall, ToolOutput};
pub use hook::{Hook, HookError, HookResult};
pub use manager::{HookInfo, HookManager};
