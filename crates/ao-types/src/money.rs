use std::fmt;
use std::ops::Add;

use serde::{Deserialize, Serialize};

/// Millisats in one sat.
pub const MSATS_PER_SAT: u64 = 1_000;

/// An exact amount in millisats (thousandths of a sat).
///
/// Prices are whole sats per 1,000 tokens, so `tokens × sats_per_1k` is an exact millisat figure:
/// costs are computed here without any rounding, and rounded **up** to whole sats only at the edge
/// ([`Msats::to_sats_ceil`]), so that no non-zero cost ever becomes free.
///
/// Arithmetic saturates at `u64::MAX` instead of wrapping: an amount that large is refused by every
/// budget, which is the safe answer to an overflow.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Msats(pub u64);

impl Msats {
    /// Nothing.
    pub const ZERO: Msats = Msats(0);
    /// The saturated amount, refused by every budget.
    pub const MAX: Msats = Msats(u64::MAX);

    /// `sats` whole sats, saturating.
    pub const fn from_sats(sats: u64) -> Self {
        Msats(sats.saturating_mul(MSATS_PER_SAT))
    }

    /// The amount in whole sats, rounded up: 1 msat is 1 sat, 1,000 msats is 1 sat.
    pub const fn to_sats_ceil(self) -> u64 {
        self.0.div_ceil(MSATS_PER_SAT)
    }

    /// The amount in whole sats, rounded down.
    pub const fn to_sats_floor(self) -> u64 {
        self.0 / MSATS_PER_SAT
    }

    /// The sum, saturating at [`Msats::MAX`].
    pub const fn saturating_add(self, other: Msats) -> Msats {
        Msats(self.0.saturating_add(other.0))
    }

    /// The difference, saturating at zero.
    pub const fn saturating_sub(self, other: Msats) -> Msats {
        Msats(self.0.saturating_sub(other.0))
    }

    /// The sum, or `None` on overflow.
    pub const fn checked_add(self, other: Msats) -> Option<Msats> {
        match self.0.checked_add(other.0) {
            Some(v) => Some(Msats(v)),
            None => None,
        }
    }

    /// Whether the amount is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl Add for Msats {
    type Output = Msats;

    /// Saturating addition: money never wraps.
    fn add(self, rhs: Msats) -> Msats {
        self.saturating_add(rhs)
    }
}

impl fmt::Display for Msats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} msats", self.0)
    }
}

/// The exact cost of `tokens` at `sats_per_1k` sats per 1,000 tokens, in millisats.
///
/// `tokens × sats_per_1k / 1000` sats is exactly `tokens × sats_per_1k` millisats. The product
/// saturates at [`Msats::MAX`] rather than overflowing.
pub const fn cost_msats(tokens: u64, sats_per_1k: u64) -> Msats {
    Msats(tokens.saturating_mul(sats_per_1k))
}
