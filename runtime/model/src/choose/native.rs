//! Tool choice through a backend's own tool calling (OpenAI-compatible servers).

use super::{ChooseRequest, Decision};
use crate::chat::{ChatModel, ChatRequest};
use crate::error::Result;

/// Send the tools with the request and take the first tool call of the answer.
pub async fn choose<M: ChatModel + ?Sized>(model: &M, req: ChooseRequest) -> Result<Decision> {
    let mut chat = ChatRequest::new(req.messages.clone());
    chat.tools = req.tools.clone();
    chat.max_tokens = 512;
    chat.cancel = req.cancel.clone();
    let resp = model.chat(chat, &mut |_| {}).await?;
    let call = resp.tool_calls.into_iter().next();
    Ok(Decision {
        text: if call.is_none() { Some(resp.content) } else { None },
        call,
        usage: resp.usage,
        trace: Vec::new(),
    })
}
