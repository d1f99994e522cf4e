use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

/// The name of an agent, checked once so that every layer can rely on it.
///
/// A name is 1 to 128 characters of ASCII letters, digits and `-`, `_`, `.`, `:`, `@`. The set is
/// narrow on purpose: names travel into logs, metrics labels, SQL rows and HTTP headers, and a name
/// with spaces, control characters or look-alike Unicode would let one agent pass for another there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AgentName(String);

/// A string that is not a valid [`AgentName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AgentNameError {
    /// The name is empty.
    #[error("agent name is empty; give the agent a name such as `oracle`")]
    Empty,
    /// The name is longer than [`AgentName::MAX_LEN`].
    #[error("agent name is {len} characters long; at most 128 are allowed")]
    TooLong {
        /// The length that was given.
        len: usize,
    },
    /// The name holds a character outside the allowed set.
    #[error(
        "agent name `{name}` contains {found:?}; use ASCII letters, digits and `-` `_` `.` `:` `@`"
    )]
    InvalidChar {
        /// The name, with the offending character escaped by `{:?}` when printed.
        name: String,
        /// The first character that is not allowed.
        found: char,
    },
}

impl AgentName {
    /// The longest name allowed, in characters.
    pub const MAX_LEN: usize = 128;

    /// Checks `name` and wraps it.
    pub fn new(name: impl Into<String>) -> Result<Self, AgentNameError> {
        let name = name.into();
        if name.is_empty() {
            return Err(AgentNameError::Empty);
        }
        if name.len() > Self::MAX_LEN {
            return Err(AgentNameError::TooLong { len: name.len() });
        }
        if let Some(found) = name.chars().find(|c| !Self::is_allowed(*c)) {
            return Err(AgentNameError::InvalidChar {
                name: name.escape_debug().to_string(),
                found,
            });
        }
        Ok(AgentName(name))
    }

    fn is_allowed(c: char) -> bool {
        c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@')
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl TryFrom<String> for AgentName {
    type Error = AgentNameError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        AgentName::new(value)
    }
}

impl TryFrom<&str> for AgentName {
    type Error = AgentNameError;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        AgentName::new(value)
    }
}

impl From<AgentName> for String {
    fn from(value: AgentName) -> Self {
        value.0
    }
}

impl std::str::FromStr for AgentName {
    type Err = AgentNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AgentName::new(s)
    }
}

impl Deref for AgentName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for AgentName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for AgentName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
