use ao_types::{AgentName, BackendProvider, TokenUsage};
use serde::{Deserialize, Serialize};

use crate::error::BudgetError;

/// The largest amount (sats or tokens) a record may carry: SQLite stores integers as `i64`, and a
/// ledger must hold every record exactly.
pub const MAX_STORED_AMOUNT: u64 = u64::MAX >> 1;

/// One call's spend: who spent, where, how many tokens, how many sats, and when.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostRecord {
    /// The agent that spent.
    pub agent_name: String,
    /// The backend that was paid.
    pub backend: BackendProvider,
    /// Input tokens, as the backend reported them.
    pub input_tokens: u64,
    /// Output tokens, as the backend reported them.
    pub output_tokens: u64,
    /// The cost in whole sats (rounded up from the exact millisat figure).
    pub cost_sats: u64,
    /// When the spend happened, in Unix seconds.
    pub timestamp: u64,
}

impl CostRecord {
    /// The tokens of the record.
    pub fn usage(&self) -> TokenUsage {
        TokenUsage::new(self.input_tokens, self.output_tokens)
    }

    /// Checks that the record can be counted and stored: a valid agent name and amounts a ledger
    /// can hold exactly.
    pub fn validate(&self) -> Result<AgentName, BudgetError> {
        let name = AgentName::new(self.agent_name.as_str()).map_err(BudgetError::InvalidAgent)?;
        let fields = [
            ("input_tokens", self.input_tokens),
            ("output_tokens", self.output_tokens),
            ("cost_sats", self.cost_sats),
            ("timestamp", self.timestamp),
        ];
        for (field, value) in fields {
            if value > MAX_STORED_AMOUNT {
                return Err(BudgetError::AmountTooLarge { field, value });
            }
        }
        if self.usage().total() > MAX_STORED_AMOUNT {
            return Err(BudgetError::AmountTooLarge {
                field: "input_tokens + output_tokens",
                value: self.usage().total(),
            });
        }
        Ok(name)
    }
}

/// A reservation written down before its call was dispatched (write-ahead). While it is held, a
/// crash cannot refund the call: whoever opens the ledger next charges it at its estimate
/// ([`Hold::charge`]). Settling or releasing the call removes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hold {
    /// Unique across processes and restarts.
    pub id: String,
    /// The agent the call is for.
    pub agent_name: String,
    /// The backend the call was dispatched to.
    pub backend: BackendProvider,
    /// The estimate's input tokens.
    pub input_tokens: u64,
    /// The estimate's output tokens.
    pub output_tokens: u64,
    /// The estimate, in sats.
    pub cost_sats: u64,
    /// When the call was dispatched, in Unix seconds.
    pub created_at: u64,
}

impl Hold {
    /// The record a hold becomes when its call is charged at the estimate, dated when it was
    /// dispatched.
    pub fn charge(&self) -> CostRecord {
        CostRecord {
            agent_name: self.agent_name.clone(),
            backend: self.backend,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cost_sats: self.cost_sats,
            timestamp: self.created_at,
        }
    }
}
