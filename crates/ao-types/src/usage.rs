use serde::{Deserialize, Serialize};

/// The tokens a backend reports for one call.
///
/// This is the backend's own figure (for an OpenAI-compatible API, the `usage` object of the reply),
/// never a count made by the caller from the text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Tokens read by the model (the prompt).
    pub input_tokens: u64,
    /// Tokens written by the model (the completion).
    pub output_tokens: u64,
}

impl TokenUsage {
    /// A usage of `input_tokens` in and `output_tokens` out.
    pub const fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Self {
            input_tokens,
            output_tokens,
        }
    }

    /// Input plus output tokens, saturating at `u64::MAX` rather than wrapping.
    pub const fn total(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// Whether no token at all was used.
    pub const fn is_zero(&self) -> bool {
        self.input_tokens == 0 && self.output_tokens == 0
    }
}
