//! The spec's code samples (the user's "Advanced Features" specification, kept outside this
//! repository; see `docs/DECISIONS.md`), compiled against the facade crate
//! `agent_orchestrator` unchanged, with the spec's asserts and numbers.
//!
//! Each test quotes one sample between `// --- spec` and `// --- end spec` markers; what lies
//! outside the markers only supplies what the sample takes for granted (its free variables) or
//! checks what its comments promise.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]
#![allow(missing_docs, reason = "test code")]

// The samples stay as the spec writes them: rustfmt leaves these modules alone.
#[rustfmt::skip]
mod approvals;
#[rustfmt::skip]
mod budget;
#[rustfmt::skip]
mod hooks;
#[rustfmt::skip]
mod identity;
#[rustfmt::skip]
mod together;
#[rustfmt::skip]
mod routing;
#[rustfmt::skip]
mod threshold;
