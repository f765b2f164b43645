//! The route most frameworks take with small local models: the tools handed to the chat
//! template (its own tool section, or JSON in the system prompt where it has none), free
//! generation, and the first call (or JSON object) of the answer parsed as the call. Kept for
//! side-by-side comparison (`--strategy naive`).

use serde_json::Value;

use super::{ChooseRequest, Decision};
use crate::chat::{ChatModel, ChatRequest, ToolCall};
use crate::error::Result;

/// Ask for a call in free text and parse the first JSON object of the answer.
pub async fn choose<M: ChatModel + ?Sized>(model: &M, req: ChooseRequest) -> Result<Decision> {
    let mut chat = ChatRequest::new(req.messages.clone());
    chat.tools = req.tools.clone();
    chat.max_tokens = 256;
    // Generation stops once the first call is complete: only that one is used, so the
    // result is the same as generating to the end, only faster (which flatters this route).
    let stop = req.cancel.child_token();
    chat.cancel = stop.clone();
    let mut seen = String::new();
    let resp = model
        .chat(chat, &mut |piece: &str| {
            seen.push_str(piece);
            if piece.contains('}') && first_call(&seen).is_some() {
                stop.cancel();
            }
        })
        .await?;
    if req.cancel.is_cancelled() {
        return Err(crate::error::ModelError::Cancelled);
    }
    let call = resp.tool_calls.first().cloned().or_else(|| first_call(&resp.content));
    Ok(Decision {
        text: if call.is_none() {
            Some(resp.content.clone())
        } else {
            None
        },
        call,
        usage: resp.usage,
        trace: Vec::new(),
    })
}

/// The first JSON object in `text` that has a `name`, as a call (`arguments` or
/// `parameters` as its arguments).
pub fn first_call(text: &str) -> Option<ToolCall> {
    let mut rest = text;
    while let Some(i) = rest.find('{') {
        let tail = &rest[i..];
        let mut it = serde_json::Deserializer::from_str(tail).into_iter::<Value>();
        if let Some(Ok(v)) = it.next() {
            let name = v.get("name").and_then(Value::as_str);
            if let Some(name) = name {
                let args = v
                    .get("arguments")
                    .or_else(|| v.get("parameters"))
                    .cloned()
                    .unwrap_or(Value::Object(Default::default()));
                let args = match args {
                    Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
                    a => a,
                };
                return Some(ToolCall {
                    id: None,
                    name: name.to_string(),
                    arguments: args,
                });
            }
            return None;
        }
        rest = &tail[1..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_first_object() {
        let c = first_call("Sure! {\"name\": \"f\", \"arguments\": {\"x\": 1}} and {\"name\": \"g\"}").unwrap();
        assert_eq!(c.name, "f");
        assert_eq!(c.arguments["x"], 1);
        assert!(first_call("no json here").is_none());
        assert!(first_call("{\"answer\": 3}").is_none());
        let c = first_call("{\"name\": \"f\", \"arguments\": \"{\\\"x\\\": 2}\"}").unwrap();
        assert_eq!(c.arguments["x"], 2);
    }
}
