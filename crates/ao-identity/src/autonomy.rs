use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The approval threshold of a semi-autonomous agent when none is configured, in sats.
pub const DEFAULT_APPROVAL_ABOVE_SATS: u64 = 1_000;

/// How much an agent may do without an operator's approval.
///
/// | Level | Approval required |
/// |-------|-------------------|
/// | [`Supervised`](AutonomyLevel::Supervised) | always |
/// | [`SemiAutonomous`](AutonomyLevel::SemiAutonomous) | when the cost is above the threshold (1000 sats unless configured) |
/// | [`FullyAutonomous`](AutonomyLevel::FullyAutonomous) | never |
///
/// The default is [`Supervised`](AutonomyLevel::Supervised): a new agent earns autonomy, it does not
/// start with it.
///
/// In configuration files and serde the levels are written `supervised`, `semi-autonomous` and
/// `fully-autonomous`; the NIP-SA words `bounded` and `autonomous` are accepted too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AutonomyLevel {
    /// Every action requires approval.
    #[default]
    Supervised,
    /// Low-cost actions run on their own; costly ones need approval.
    #[serde(alias = "bounded")]
    SemiAutonomous,
    /// No action requires approval.
    #[serde(alias = "autonomous")]
    FullyAutonomous,
}

impl AutonomyLevel {
    /// Every level, from least to most autonomous.
    pub const ALL: [AutonomyLevel; 3] = [
        AutonomyLevel::Supervised,
        AutonomyLevel::SemiAutonomous,
        AutonomyLevel::FullyAutonomous,
    ];

    /// Whether an action costing `cost_sats` needs an operator's approval at this level, given the
    /// approval amount `above_sats` of a semi-autonomous agent.
    ///
    /// Supervised: always. Semi-autonomous: when `cost_sats > above_sats`. Fully autonomous:
    /// never.
    pub const fn requires_approval(self, cost_sats: u64, above_sats: u64) -> bool {
        match self {
            AutonomyLevel::Supervised => true,
            AutonomyLevel::SemiAutonomous => cost_sats > above_sats,
            AutonomyLevel::FullyAutonomous => false,
        }
    }

    /// The level's name in configuration: `supervised`, `semi-autonomous` or `fully-autonomous`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AutonomyLevel::Supervised => "supervised",
            AutonomyLevel::SemiAutonomous => "semi-autonomous",
            AutonomyLevel::FullyAutonomous => "fully-autonomous",
        }
    }

    /// The word NIP-SA uses for the level in an agent profile: `supervised`, `bounded` or
    /// `autonomous`.
    pub const fn nip_sa_word(self) -> &'static str {
        match self {
            AutonomyLevel::Supervised => "supervised",
            AutonomyLevel::SemiAutonomous => "bounded",
            AutonomyLevel::FullyAutonomous => "autonomous",
        }
    }
}

impl fmt::Display for AutonomyLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`AutonomyLevel`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown autonomy level `{given}`: expected supervised, semi-autonomous (bounded) or fully-autonomous (autonomous)"
)]
pub struct ParseAutonomyError {
    /// The string that was given.
    pub given: String,
}

impl FromStr for AutonomyLevel {
    type Err = ParseAutonomyError;

    /// Reads the configuration name or the NIP-SA word of a level.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AutonomyLevel::ALL
            .into_iter()
            .find(|level| level.as_str() == s || level.nip_sa_word() == s)
            .ok_or_else(|| ParseAutonomyError {
                given: s.to_owned(),
            })
    }
}
