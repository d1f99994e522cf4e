//! Approvals: the operator's say over what a supervised or semi-autonomous agent may do.
//!
//! This crate holds the approval coordinator of the spec: requests, decisions, expiry and the
//! operator-signed decisions an agent cannot forge.
//!
//! What it is **not** for: the autonomy rule itself (see `ao-identity`'s `AutonomyLevel`) or
//! storage engines (see `ao-store`).

#![forbid(unsafe_code)]
