//! [`Role`]: who wrote a message of a conversation. One definition shared by the chat models
//! (`stepwise-model`) and the conversation threads of memory (`stepwise-memory`), so a stored
//! message goes back into a model's context without a conversion table.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions to the model.
    System,
    /// The person (or the plan's prompt).
    User,
    /// The model: an answer or tool calls.
    Assistant,
    /// A tool's result.
    Tool,
}

impl Role {
    /// The role's name as chat templates, OpenAI and the memory tables spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }

    /// The role named `s` (as [`Role::as_str`] spells it).
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "system" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" => Role::Tool,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in [Role::System, Role::User, Role::Assistant, Role::Tool] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).ok(), Some(serde_json::Value::from(r.as_str())));
        }
        assert_eq!(Role::parse("robot"), None);
    }
}
