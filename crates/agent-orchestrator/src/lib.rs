//! Infrastructure for sovereign AI agents: an agent acts on its own without anyone being able to
//! steal its identity or run up its bill.
//!
//! This is the facade crate. It re-exports every sub-crate under a short name, and lifts the types
//! of the specification to the root, so that `use agent_orchestrator::{MultiBackendRouter, ...}`
//! works as the spec writes it:
//!
//! | Module | Crate | Feature | What it holds |
//! |--------|-------|---------|---------------|
//! | [`types`] | `ao-types` | always | providers, token usage, money, clocks, agent names |
//! | `identity` | `ao-identity` | `identity` | threshold configurations, autonomy levels, agent identities |
//! | `threshold` | `ao-threshold` | `threshold` | FROST keys: key generation, signing Nostr events, encrypted shares |
//! | `signer` | `ao-signer` | `signer` | shares on separate machines: signer nodes, a coordinator and a NIP-46 bunker over Nostr relays |
//! | `routing` | `ao-routing` | `routing` | backend configurations, prices, the router (no I/O) |
//! | `routing::http` | `ao-routing` | `http` | real backends: the OpenAI-compatible client, retries, fallback |
//! | `dvm` | `ao-dvm` | `dvm` | NIP-90 compute paid over Lightning: the DVM backend, the NWC wallet, payments at most once |
//! | `budget` | `ao-budget` | `budget` | cost tracking, reservations and budgets |
//! | `approvals` | `ao-approvals` | `approvals` | the approval workflow, signed decisions |
//! | `audit` | `ao-audit` | `approvals` | the hash-chained audit log |
//! | `hooks` | `ao-hooks` | `hooks` | enforcement around tool calls: budgets, approvals, audit |
//! | `store` | `ao-store` | `store` | the SQLite database |
//! | `orchestrator` | `ao-orchestrator` | `runtime` | real backends, the `Orchestrator`, TOML configuration, the agent's events signed by its nodes |
//! | `gateway` | `ao-gateway` | `gateway` | the OpenAI-compatible HTTP gateway of `ao serve` |
//!
//! Every feature is on by default. A user who needs only a part depends on the facade with
//! `default-features = false` and the features they want, or on one sub-crate directly.
//!
//! What it is **not** for: logic of its own. Everything here lives in a sub-crate; the facade only
//! gathers it.
//!
//! # Example
//!
//! ```
//! # #[cfg(all(feature = "identity", feature = "routing"))] {
//! use agent_orchestrator::{
//!     AgentIdentity, AutonomyLevel, BackendConfig, BackendProvider, MultiBackendRouter,
//! };
//!
//! let router = MultiBackendRouter::new(BackendProvider::Codex)
//!     .add_backend(BackendConfig::codex("sonnet-4"))
//!     .add_backend(BackendConfig::openai("gpt-4"))
//!     .route_agent("oracle", BackendProvider::OpenAI);
//!
//! let backend = router.get_backend("oracle").unwrap();
//! assert_eq!(backend.provider, BackendProvider::OpenAI);
//! // 10,000 tokens in and 5,000 out at 5 and 15 sats per 1,000.
//! assert_eq!(backend.calculate_cost(10_000, 5_000), 125);
//!
//! let identity = AgentIdentity::new("agent_pubkey", "oracle", "gpt-4")
//!     .with_autonomy(AutonomyLevel::SemiAutonomous);
//! // A semi-autonomous agent needs approval above 1000 sats.
//! assert!(identity.autonomy_level.requires_approval(5_000, 1_000));
//! assert!(!identity.autonomy_level.requires_approval(125, 1_000));
//! # }
//! ```

#![forbid(unsafe_code)]

#[doc(inline)]
pub use ao_types as types;
#[doc(inline)]
pub use ao_types::{BackendProvider, TokenUsage};

#[cfg(feature = "identity")]
#[doc(inline)]
pub use ao_identity as identity;
#[cfg(feature = "identity")]
#[doc(inline)]
pub use ao_identity::{AgentIdentity, AutonomyLevel, ThresholdConfig};

#[cfg(feature = "threshold")]
#[doc(inline)]
pub use ao_threshold as threshold;
#[cfg(feature = "threshold")]
#[doc(inline)]
pub use ao_threshold::{KeygenConfig, KeygenSession};

#[cfg(feature = "signer")]
#[doc(inline)]
pub use ao_signer as signer;

#[cfg(feature = "routing")]
#[doc(inline)]
pub use ao_routing as routing;
#[cfg(feature = "routing")]
#[doc(inline)]
pub use ao_routing::{BackendConfig, MultiBackendRouter};

#[cfg(feature = "dvm")]
#[doc(inline)]
pub use ao_dvm as dvm;

#[cfg(feature = "budget")]
#[doc(inline)]
pub use ao_budget as budget;
#[cfg(feature = "budget")]
#[doc(inline)]
pub use ao_budget::{BudgetConfig, BudgetError, BudgetStatus, CostRecord, CostTracker};

#[cfg(feature = "approvals")]
#[doc(inline)]
pub use ao_approvals as approvals;
#[cfg(feature = "approvals")]
#[doc(inline)]
pub use ao_approvals::{ApprovalError, ApprovalStatus, PendingApproval, SolverAgentCoordinator};
#[cfg(feature = "approvals")]
#[doc(inline)]
pub use ao_audit as audit;

#[cfg(feature = "hooks")]
#[doc(inline)]
pub use ao_hooks as hooks;
#[cfg(feature = "hooks")]
#[doc(inline)]
pub use ao_hooks::{
    ApprovalHook, AuditHook, CostTrackingHook, Hook, HookManager, HookResult, ToolCall, ToolOutput,
};

#[cfg(feature = "store")]
#[doc(inline)]
pub use ao_store as store;
#[cfg(feature = "store")]
#[doc(inline)]
pub use ao_store::SqliteStore;

#[cfg(feature = "runtime")]
#[doc(inline)]
pub use ao_orchestrator as orchestrator;
#[cfg(feature = "runtime")]
#[doc(inline)]
pub use ao_orchestrator::{Config, Orchestrator};

#[cfg(feature = "gateway")]
#[doc(inline)]
pub use ao_gateway as gateway;

/// The README's Rust example, compiled and run as a doctest so it cannot drift from the code.
#[cfg(all(doctest, feature = "routing"))]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
