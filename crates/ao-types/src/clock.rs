use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds in a UTC day.
pub const SECONDS_PER_DAY: u64 = 86_400;

/// The time could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClockError {
    /// The system clock reads a time before 1970-01-01: nothing that depends on time can be decided.
    #[error("the system clock is set before the Unix epoch; fix the clock before spending")]
    BeforeEpoch,
}

/// A source of the current time, in Unix seconds.
///
/// Every rule that depends on time (UTC days, sessions, expiry, leases) reads it through a clock,
/// so tests can set the time and cross midnight on purpose. A clock that cannot answer returns an
/// error, and callers refuse rather than guess.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time in Unix seconds.
    fn now(&self) -> Result<u64, ClockError>;
}

/// A clock shared between the parts of a runtime.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Result<u64, ClockError> {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .map_err(|_| ClockError::BeforeEpoch)
    }
}

/// A clock that tests set by hand.
///
/// Clones share the same time, so a test can keep one handle and give another to the code under
/// test.
#[derive(Debug, Clone, Default)]
pub struct TestClock {
    now: Arc<AtomicU64>,
}

impl TestClock {
    /// A clock that reads `now` (Unix seconds) until it is changed.
    pub fn new(now: u64) -> Self {
        Self {
            now: Arc::new(AtomicU64::new(now)),
        }
    }

    /// Sets the time to `now` (Unix seconds). Time may go backwards, as real clocks sometimes do.
    pub fn set(&self, now: u64) {
        self.now.store(now, Ordering::SeqCst);
    }

    /// Moves the time forward by `seconds`, saturating at `u64::MAX`.
    pub fn advance(&self, seconds: u64) {
        // A failed update is impossible: the closure always returns `Some`.
        let _ = self
            .now
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(seconds))
            });
    }
}

impl Clock for TestClock {
    fn now(&self) -> Result<u64, ClockError> {
        Ok(self.now.load(Ordering::SeqCst))
    }
}

/// The first second of the UTC day that contains `timestamp`.
pub const fn utc_day_start(timestamp: u64) -> u64 {
    timestamp - timestamp % SECONDS_PER_DAY
}

/// The first second of the UTC day after the one that contains `timestamp` (the day is
/// `[utc_day_start, utc_day_end)`), saturating at `u64::MAX`.
pub const fn utc_day_end(timestamp: u64) -> u64 {
    utc_day_start(timestamp).saturating_add(SECONDS_PER_DAY)
}
