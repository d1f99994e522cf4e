//! Cross-crate suites of agent-orchestrator.
//!
//! This package holds no library code: its test targets (`spec/`, and the suites later issues add)
//! compile the spec's samples against the facade crate `agent_orchestrator` and check that they
//! behave as the spec says. Run them with `cargo xtask integration`.
