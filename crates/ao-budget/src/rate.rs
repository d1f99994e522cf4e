//! Per-agent rate limits: requests per minute, tokens per minute and calls at once. They bound
//! how fast an agent spends, where budgets bound how much. Each agent's check and count are one
//! step under its own lock, so concurrent calls never pass a limit together, and a token limit
//! counts the tokens reserved at admission (the estimate), so it cannot be raced by calls whose
//! real usage is not known yet.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// The window requests and tokens per minute are counted over, in seconds.
const WINDOW_SECS: u64 = 60;

/// An agent's rate limits; `None` for no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// Calls admitted in any 60 seconds.
    #[serde(default)]
    pub requests_per_minute: Option<u64>,
    /// Tokens reserved (the calls' estimates) in any 60 seconds.
    #[serde(default)]
    pub tokens_per_minute: Option<u64>,
    /// Calls in flight at once.
    #[serde(default)]
    pub concurrent: Option<u32>,
}

/// Which rate limit refused a call, and when to try again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RateError {
    /// Too many calls in the last minute.
    #[error(
        "agent `{agent}` made {limit} calls in the last minute, its limit; retry in {retry_after_secs} s"
    )]
    RequestsPerMinute {
        /// The agent.
        agent: String,
        /// The limit.
        limit: u64,
        /// Seconds until a call fits.
        retry_after_secs: u64,
    },
    /// Too many tokens reserved in the last minute.
    #[error(
        "agent `{agent}` reserved {used} of its {limit} tokens per minute and this call needs {requested}; retry in {retry_after_secs} s"
    )]
    TokensPerMinute {
        /// The agent.
        agent: String,
        /// The limit.
        limit: u64,
        /// Tokens reserved in the window.
        used: u64,
        /// Tokens this call needs.
        requested: u64,
        /// Seconds until it fits (or until the window is empty, if it never fits).
        retry_after_secs: u64,
    },
    /// Too many calls in flight.
    #[error("agent `{agent}` has {limit} calls in flight, its limit; retry when one ends")]
    Concurrent {
        /// The agent.
        agent: String,
        /// The limit.
        limit: u32,
    },
    /// The limiter's state is unavailable after a panic: nothing is admitted.
    #[error(
        "the rate limiter's state is unavailable after a panic in another thread; restart the process"
    )]
    Poisoned,
}

impl RateError {
    /// Seconds the caller should wait before trying again.
    pub fn retry_after_secs(&self) -> u64 {
        match self {
            RateError::RequestsPerMinute {
                retry_after_secs, ..
            }
            | RateError::TokensPerMinute {
                retry_after_secs, ..
            } => *retry_after_secs,
            RateError::Concurrent { .. } | RateError::Poisoned => 1,
        }
    }
}

#[derive(Debug, Default)]
struct AgentRate {
    /// Admitted calls in the window: when, and how many tokens.
    window: VecDeque<(u64, u64)>,
    tokens: u64,
    in_flight: u32,
}

impl AgentRate {
    fn forget_before(&mut self, start: u64) {
        while let Some(&(at, tokens)) = self.window.front() {
            if at >= start {
                break;
            }
            self.window.pop_front();
            self.tokens = self.tokens.saturating_sub(tokens);
        }
    }

    /// Seconds from `now` until the window holds at most `keep` entries and `keep_tokens`.
    fn wait_until(&self, now: u64, keep: usize, keep_tokens: u64) -> u64 {
        let mut tokens = self.tokens;
        let mut count = self.window.len();
        for &(at, t) in &self.window {
            if count <= keep && tokens <= keep_tokens {
                break;
            }
            count -= 1;
            tokens = tokens.saturating_sub(t);
            let leaves = at.saturating_add(WINDOW_SECS);
            if count <= keep && tokens <= keep_tokens {
                return leaves.saturating_sub(now).max(1);
            }
        }
        1
    }
}

/// The rate limits of every agent, and what each has used.
#[derive(Debug, Default)]
pub struct RateLimiter {
    default: RateLimits,
    limits: HashMap<String, RateLimits>,
    agents: Mutex<HashMap<String, Arc<Mutex<AgentRate>>>>,
}

/// A call's place among its agent's calls in flight; dropping it frees the place.
#[derive(Debug)]
#[must_use = "the call counts as in flight until the permit is dropped"]
pub struct RatePermit {
    agent: Option<Arc<Mutex<AgentRate>>>,
}

impl Drop for RatePermit {
    fn drop(&mut self) {
        if let Some(agent) = self.agent.take()
            && let Ok(mut state) = agent.lock()
        {
            state.in_flight = state.in_flight.saturating_sub(1);
        }
    }
}

impl RateLimiter {
    /// No limits for anyone.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the limits of agents without their own.
    pub fn with_default(mut self, limits: RateLimits) -> Self {
        self.default = limits;
        self
    }

    /// Sets `agent`'s limits.
    pub fn with_limits(mut self, agent: impl Into<String>, limits: RateLimits) -> Self {
        self.limits.insert(agent.into(), limits);
        self
    }

    /// The limits that apply to `agent`.
    pub fn limits_for(&self, agent: &str) -> RateLimits {
        self.limits.get(agent).copied().unwrap_or(self.default)
    }

    /// Admits a call of `agent` reserving `tokens` at `now` (Unix seconds), or says which limit
    /// refuses it. The check and the count are one step: concurrent callers cannot pass a limit
    /// together. The permit holds the call's place in flight until it is dropped.
    pub fn admit(&self, agent: &str, tokens: u64, now: u64) -> Result<RatePermit, RateError> {
        let limits = self.limits_for(agent);
        if limits == RateLimits::default() {
            return Ok(RatePermit { agent: None });
        }
        let slot = {
            let mut agents = self.agents.lock().map_err(|_| RateError::Poisoned)?;
            Arc::clone(agents.entry(agent.to_owned()).or_default())
        };
        let mut state = slot.lock().map_err(|_| RateError::Poisoned)?;
        state.forget_before(now.saturating_sub(WINDOW_SECS - 1));
        if let Some(limit) = limits.concurrent
            && state.in_flight >= limit
        {
            return Err(RateError::Concurrent {
                agent: agent.to_owned(),
                limit,
            });
        }
        if let Some(limit) = limits.requests_per_minute {
            let keep = usize::try_from(limit.saturating_sub(1)).unwrap_or(usize::MAX);
            if u64::try_from(state.window.len()).unwrap_or(u64::MAX) >= limit {
                return Err(RateError::RequestsPerMinute {
                    agent: agent.to_owned(),
                    limit,
                    retry_after_secs: state.wait_until(now, keep, u64::MAX),
                });
            }
        }
        if let Some(limit) = limits.tokens_per_minute
            && state.tokens.saturating_add(tokens) > limit
        {
            return Err(RateError::TokensPerMinute {
                agent: agent.to_owned(),
                limit,
                used: state.tokens,
                requested: tokens,
                retry_after_secs: state.wait_until(
                    now,
                    usize::MAX,
                    limit.saturating_sub(tokens.min(limit)),
                ),
            });
        }
        state.window.push_back((now, tokens));
        state.tokens = state.tokens.saturating_add(tokens);
        state.in_flight = state.in_flight.saturating_add(1);
        drop(state);
        Ok(RatePermit { agent: Some(slot) })
    }
}
