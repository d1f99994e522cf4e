use ao_types::{BackendProvider, Msats, TokenUsage, cost_msats};
use serde::{Deserialize, Serialize};

/// One AI backend: who serves it, which model, where, and at what price.
///
/// Prices are whole sats per 1,000 tokens. The constructors carry the prices that
/// `docs/DECISIONS.md` (Names and providers) sets:
///
/// | Constructor | Input | Output |
/// |-------------|-------|--------|
/// | [`codex`](BackendConfig::codex) | 3 | 15 |
/// | [`openai`](BackendConfig::openai) | 5 | 15 |
/// | [`local`](BackendConfig::local) | 0 | 0 |
/// | [`gpt_oss`](BackendConfig::gpt_oss) | 0 | 0 |
///
/// A free backend still goes through every budget check: free is not unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// Who serves the backend.
    pub provider: BackendProvider,
    /// The model name sent to the backend.
    pub model: String,
    /// The base URL, when it is not the provider's well-known one.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Sats per 1,000 input tokens.
    pub cost_per_1k_input: u64,
    /// Sats per 1,000 output tokens.
    pub cost_per_1k_output: u64,
    /// Whether the backend may be routed to.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

impl BackendConfig {
    /// A backend of `provider` serving `model` at the given prices, enabled, with no endpoint.
    pub fn new(
        provider: BackendProvider,
        model: impl Into<String>,
        cost_per_1k_input: u64,
        cost_per_1k_output: u64,
    ) -> Self {
        Self {
            provider,
            model: model.into(),
            endpoint: None,
            cost_per_1k_input,
            cost_per_1k_output,
            enabled: true,
        }
    }

    /// The OpenAI Codex API serving `model`: 3 sats in, 15 sats out per 1,000 tokens.
    pub fn codex(model: impl Into<String>) -> Self {
        Self::new(BackendProvider::Codex, model, 3, 15)
    }

    /// The OpenAI API serving `model`: 5 sats in, 15 sats out per 1,000 tokens.
    pub fn openai(model: impl Into<String>) -> Self {
        Self::new(BackendProvider::OpenAI, model, 5, 15)
    }

    /// A custom local endpoint (such as Ollama at `http://localhost:11434`) serving `model`, free
    /// unless priced with [`with_prices`](BackendConfig::with_prices).
    pub fn local(model: impl Into<String>, endpoint: impl Into<String>) -> Self {
        Self::new(BackendProvider::Local, model, 0, 0).with_endpoint(endpoint)
    }

    /// A GPT-OSS inference server (vLLM or llama.cpp) serving `model`, free unless priced with
    /// [`with_prices`](BackendConfig::with_prices).
    pub fn gpt_oss(model: impl Into<String>, endpoint: impl Into<String>) -> Self {
        Self::new(BackendProvider::GptOss, model, 0, 0).with_endpoint(endpoint)
    }

    /// Sets the base URL.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Sets the prices, in sats per 1,000 input and output tokens.
    pub fn with_prices(mut self, cost_per_1k_input: u64, cost_per_1k_output: u64) -> Self {
        self.cost_per_1k_input = cost_per_1k_input;
        self.cost_per_1k_output = cost_per_1k_output;
        self
    }

    /// Enables or disables the backend.
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// The exact cost of a call, in millisats: `input × in_price + output × out_price`, with no
    /// rounding. Saturates at `u64::MAX` instead of overflowing.
    pub fn calculate_cost_msats(&self, input_tokens: u64, output_tokens: u64) -> u64 {
        self.cost_of_msats(TokenUsage::new(input_tokens, output_tokens))
            .0
    }

    /// The cost of a call in whole sats, rounded **up**.
    ///
    /// `calculate_cost(10_000, 5_000)` at codex prices is `30 + 75 = 105` sats, as the spec says;
    /// 333 tokens at 3 sats per 1,000 cost 1 sat, not 0, so a million small calls are never free.
    /// A cost too large for `u64` millisats saturates at `u64::MAX` sats, which every budget
    /// refuses.
    pub fn calculate_cost(&self, input_tokens: u64, output_tokens: u64) -> u64 {
        let msats = self.cost_of_msats(TokenUsage::new(input_tokens, output_tokens));
        if msats == ao_types::Msats::MAX {
            return u64::MAX;
        }
        msats.to_sats_ceil()
    }

    /// The exact cost of `usage`, in [`Msats`].
    pub fn cost_of_msats(&self, usage: TokenUsage) -> Msats {
        cost_msats(usage.input_tokens, self.cost_per_1k_input)
            .saturating_add(cost_msats(usage.output_tokens, self.cost_per_1k_output))
    }

    /// Whether every call to this backend costs nothing.
    pub fn is_free(&self) -> bool {
        self.cost_per_1k_input == 0 && self.cost_per_1k_output == 0
    }
}
