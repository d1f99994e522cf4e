//! Hooks: the enforcement points that run before and after every tool call.
//!
//! This crate holds the hook model and the hook manager, which run budget, approval and audit
//! checks around tool calls in a documented order.
//!
//! What it is **not** for: the rules themselves (budgets, approvals), which live in their own
//! crates; a hook only applies them at the right moment.

#![forbid(unsafe_code)]
