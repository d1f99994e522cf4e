use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ao_types::BackendProvider;
use async_trait::async_trait;

use super::chat::{ChatRequest, ChatResponse, ChatStream};
use super::client::Backend;
use super::error::BackendError;
use crate::BackendConfig;

/// One failed try at one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The backend tried.
    pub provider: BackendProvider,
    /// Why it failed.
    pub error: BackendError,
}

impl Attempt {
    /// Whether the provider may have billed this attempt ([`BackendError::may_have_billed`]).
    pub fn may_have_billed(&self) -> bool {
        self.error.may_have_billed()
    }
}

/// Whether another attempt may be made. The pool asks before every attempt after the first
/// (a retry, or a fallback to the next backend), telling how many attempts so far the providers
/// may have billed; an orchestrator answers by reserving another full estimate, or refuses.
#[async_trait]
pub trait AttemptGate: Send + Sync {
    /// `true` to go ahead with another attempt, after `billed` attempts that may have been
    /// billed.
    async fn allow_another(&self, billed: u32) -> bool;
}

/// A gate that always lets another attempt go ahead: for callers with no budget to keep.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ungated;

#[async_trait]
impl AttemptGate for Ungated {
    async fn allow_another(&self, _billed: u32) -> bool {
        true
    }
}

/// A backend's answer, with the attempts that failed before it.
#[derive(Debug)]
pub struct Answered<T> {
    /// The backend that answered.
    pub provider: BackendProvider,
    /// Its answer.
    pub value: T,
    /// The attempts that failed first, in order: some may have been billed.
    pub failed: Vec<Attempt>,
}

impl<T> Answered<T> {
    /// The failed attempts the providers may have billed.
    pub fn billed_failures(&self) -> u32 {
        billed(&self.failed)
    }
}

/// Every backend of the chain failed, one failed in a way another cannot fix, or the gate
/// refused another attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FallbackError {
    /// Each try, in order. Empty when the chain was empty.
    pub attempts: Vec<Attempt>,
    /// Whether the walk stopped because the gate (the budget) refused another attempt.
    pub gate_refused: bool,
}

impl fmt::Display for FallbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.attempts.is_empty() {
            return f.write_str("no enabled backend to try");
        }
        f.write_str("no backend answered: ")?;
        for (i, a) in self.attempts.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}", a.error)?;
        }
        if self.gate_refused {
            f.write_str("; the budget does not cover another attempt")?;
        }
        Ok(())
    }
}

impl FallbackError {
    /// A failure of one attempt at `provider`.
    pub fn single(provider: BackendProvider, error: BackendError) -> Self {
        Self {
            attempts: vec![Attempt { provider, error }],
            gate_refused: false,
        }
    }

    /// The last failure, which decided the outcome.
    pub fn last(&self) -> Option<&BackendError> {
        self.attempts.last().map(|a| &a.error)
    }

    /// The attempts the providers may have billed.
    pub fn billed_attempts(&self) -> u32 {
        billed(&self.attempts)
    }
}

fn billed(attempts: &[Attempt]) -> u32 {
    u32::try_from(attempts.iter().filter(|a| a.may_have_billed()).count()).unwrap_or(u32::MAX)
}

#[derive(Debug, Default, Clone, Copy)]
struct Health {
    consecutive_failures: u32,
    cooling_until: Option<Instant>,
    failures_total: u64,
}

/// The live backends, by provider, with the health that decides the order they are tried in.
///
/// A backend that failed `cooldown_after` times in a row (after its own retries) is skipped for
/// `cooldown`, unless every backend of the chain is cooling down.
pub struct BackendPool {
    backends: HashMap<BackendProvider, Arc<dyn Backend>>,
    health: Mutex<HashMap<BackendProvider, Health>>,
    cooldown_after: u32,
    cooldown: Duration,
}

impl fmt::Debug for BackendPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendPool")
            .field("backends", &self.backends.keys().collect::<Vec<_>>())
            .field("cooldown_after", &self.cooldown_after)
            .field("cooldown", &self.cooldown)
            .finish()
    }
}

impl Default for BackendPool {
    fn default() -> Self {
        Self::new()
    }
}

impl BackendPool {
    /// An empty pool: cooldown of 30 s after 3 failures in a row.
    pub fn new() -> Self {
        Self {
            backends: HashMap::new(),
            health: Mutex::new(HashMap::new()),
            cooldown_after: 3,
            cooldown: Duration::from_secs(30),
        }
    }

    /// Sets the cooldown: `cooldown` after `after` failures in a row.
    pub fn with_cooldown(mut self, after: u32, cooldown: Duration) -> Self {
        self.cooldown_after = after.max(1);
        self.cooldown = cooldown;
        self
    }

    /// Adds (or replaces) the backend of its provider.
    pub fn with_backend(mut self, backend: Arc<dyn Backend>) -> Self {
        self.backends.insert(backend.config().provider, backend);
        self
    }

    /// The backend of `provider`, if any.
    pub fn get(&self, provider: BackendProvider) -> Option<&Arc<dyn Backend>> {
        self.backends.get(&provider)
    }

    /// Failed tries at each backend since the pool was made (retryable failures: unreachable,
    /// timeout, 429, 5xx), for metrics.
    pub fn failure_counts(&self) -> Vec<(BackendProvider, u64)> {
        let mut counts: Vec<(BackendProvider, u64)> = self
            .health
            .lock()
            .map(|h| h.iter().map(|(p, h)| (*p, h.failures_total)).collect())
            .unwrap_or_default();
        counts.sort();
        counts
    }

    /// Whether `provider` is cooling down now.
    pub fn is_cooling(&self, provider: BackendProvider) -> bool {
        self.health
            .lock()
            .ok()
            .and_then(|h| h.get(&provider).copied())
            .and_then(|h| h.cooling_until)
            .is_some_and(|until| until > Instant::now())
    }

    /// The backends to try for `chain`, in order: those with a live client and not cooling down;
    /// all of them if every one is cooling down.
    fn order(&self, chain: &[&BackendConfig]) -> Vec<Arc<dyn Backend>> {
        let live: Vec<Arc<dyn Backend>> = chain
            .iter()
            .filter_map(|c| self.backends.get(&c.provider).cloned())
            .collect();
        let warm: Vec<Arc<dyn Backend>> = live
            .iter()
            .filter(|b| !self.is_cooling(b.config().provider))
            .cloned()
            .collect();
        if warm.is_empty() { live } else { warm }
    }

    fn record(&self, provider: BackendProvider, ok: bool) {
        let Ok(mut health) = self.health.lock() else {
            return;
        };
        let h = health.entry(provider).or_default();
        if ok {
            h.consecutive_failures = 0;
            h.cooling_until = None;
            return;
        }
        h.failures_total = h.failures_total.saturating_add(1);
        h.consecutive_failures = h.consecutive_failures.saturating_add(1);
        if h.consecutive_failures >= self.cooldown_after {
            h.cooling_until = Some(Instant::now() + self.cooldown);
            tracing::warn!(%provider, cooldown = ?self.cooldown, "backend keeps failing; cooling it down");
        }
    }

    /// Sends `request` along `chain`: the first backend that answers wins. A failure that may
    /// pass (unreachable, timeout, 429, 5xx) is retried as the backend's retry policy says, then
    /// moves on to the next backend; any other (a bad request, a malformed reply) ends the walk.
    /// `gate` is asked before every attempt after the first.
    pub async fn complete(
        &self,
        chain: &[&BackendConfig],
        request: &ChatRequest,
        gate: &dyn AttemptGate,
    ) -> Result<Answered<ChatResponse>, FallbackError> {
        self.walk(chain, gate, |backend| async move {
            backend.complete(request).await
        })
        .await
    }

    /// Opens a stream along `chain`, retrying and falling back as
    /// [`complete`](BackendPool::complete) does until a backend starts answering. Once a stream
    /// has started, it is that backend's.
    pub async fn stream(
        &self,
        chain: &[&BackendConfig],
        request: &ChatRequest,
        gate: &dyn AttemptGate,
    ) -> Result<Answered<ChatStream>, FallbackError> {
        self.walk(chain, gate, |backend| async move {
            backend.stream(request).await
        })
        .await
    }

    /// Tries `call` on each backend of `chain` in order, with its retries, until one succeeds,
    /// one fails in a way the next cannot fix, or `gate` refuses another attempt; records each
    /// backend's health.
    async fn walk<T, F, Fut>(
        &self,
        chain: &[&BackendConfig],
        gate: &dyn AttemptGate,
        mut call: F,
    ) -> Result<Answered<T>, FallbackError>
    where
        F: FnMut(Arc<dyn Backend>) -> Fut,
        Fut: std::future::Future<Output = Result<T, BackendError>>,
    {
        let mut attempts: Vec<Attempt> = Vec::new();
        for backend in self.order(chain) {
            let provider = backend.config().provider;
            let policy = backend.retry_policy();
            let mut retry = 0u32;
            loop {
                if !attempts.is_empty() && !gate.allow_another(billed(&attempts)).await {
                    return Err(FallbackError {
                        attempts,
                        gate_refused: true,
                    });
                }
                let error = match call(Arc::clone(&backend)).await {
                    Ok(value) => {
                        self.record(provider, true);
                        return Ok(Answered {
                            provider,
                            value,
                            failed: attempts,
                        });
                    }
                    Err(error) => error,
                };
                let retryable = error.is_retryable();
                let wait = policy.wait(retry, &error);
                attempts.push(Attempt { provider, error });
                if !retryable {
                    self.record(provider, true);
                    return Err(FallbackError {
                        attempts,
                        gate_refused: false,
                    });
                }
                if retry >= policy.max_retries {
                    self.record(provider, false);
                    break;
                }
                tracing::warn!(%provider, retry, ?wait, "retrying backend");
                tokio::time::sleep(wait).await;
                retry += 1;
            }
        }
        Err(FallbackError {
            attempts,
            gate_refused: false,
        })
    }
}
