use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kind of AI backend that serves a request.
///
/// The spec lists `Codex` twice; `docs/DECISIONS.md` (Names and providers) settles the set to
/// these five. The string form ([`BackendProvider::as_str`], [`Display`](fmt::Display),
/// [`FromStr`] and serde) is the same everywhere: `codex`, `openai`, `gpt-oss`, `local`, `dvm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BackendProvider {
    /// The OpenAI Codex API.
    #[serde(rename = "codex")]
    Codex,
    /// The OpenAI API.
    #[serde(rename = "openai")]
    OpenAI,
    /// A local GPT-OSS inference server (vLLM or a llama.cpp server).
    #[serde(rename = "gpt-oss")]
    GptOss,
    /// A custom local endpoint, such as Ollama's OpenAI-compatible API.
    #[serde(rename = "local")]
    Local,
    /// Decentralised compute through NIP-90 data vending machines.
    #[serde(rename = "dvm")]
    Dvm,
}

impl BackendProvider {
    /// Every provider, in declaration order.
    pub const ALL: [BackendProvider; 5] = [
        BackendProvider::Codex,
        BackendProvider::OpenAI,
        BackendProvider::GptOss,
        BackendProvider::Local,
        BackendProvider::Dvm,
    ];

    /// The provider's stable name: `codex`, `openai`, `gpt-oss`, `local` or `dvm`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BackendProvider::Codex => "codex",
            BackendProvider::OpenAI => "openai",
            BackendProvider::GptOss => "gpt-oss",
            BackendProvider::Local => "local",
            BackendProvider::Dvm => "dvm",
        }
    }
}

impl fmt::Display for BackendProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`BackendProvider`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown backend provider `{given}`: expected one of codex, openai, gpt-oss, local, dvm")]
pub struct ParseProviderError {
    /// The string that was given.
    pub given: String,
}

impl FromStr for BackendProvider {
    type Err = ParseProviderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BackendProvider::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| ParseProviderError {
                given: s.to_owned(),
            })
    }
}
