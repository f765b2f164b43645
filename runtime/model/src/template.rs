//! Chat prompts rendered from the GGUF's own `tokenizer.chat_template` (Jinja), the way the
//! model was trained to see them. Templates with a tool section get the tools through it;
//! for templates without one, the tools are described in the system message.
//!
//! The template also tells how the model writes a tool call: a probe conversation with a
//! sentinel call is rendered and the text around the sentinel becomes the call syntax the
//! tool chooser forces.

use minijinja::{Environment, Error as JinjaError, ErrorKind, Value as JValue};
use serde_json::{Value, json};

use crate::chat::{Message, Role, ToolDef};
use crate::error::{ModelError, Result};

/// ChatML, for models whose GGUF carries no template.
const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

const PROBE_NAME: &str = "zzprobe_tool";
const PROBE_ARG: &str = "zzprobe_arg";

/// How an assistant message that calls a tool looks, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSyntax {
    /// Text from the start of the assistant turn to the tool's name (`<tool_call>\n{"name": "`).
    pub before_name: String,
    /// Text between the name and the arguments object (`", "arguments": `).
    pub before_args: String,
    /// Text after the arguments object, up to the end of the turn (`}\n</tool_call>`).
    pub after_args: String,
    /// The template renders tool calls itself (otherwise they are written into the content).
    pub native: bool,
}

impl Default for CallSyntax {
    fn default() -> Self {
        CallSyntax {
            before_name: "{\"name\": \"".into(),
            before_args: "\", \"arguments\": ".into(),
            after_args: "}".into(),
            native: false,
        }
    }
}

impl CallSyntax {
    /// The full text of a call.
    pub fn render(&self, name: &str, args: &Value) -> String {
        format!(
            "{}{}{}{}{}",
            self.before_name,
            name,
            self.before_args,
            py_json(args),
            self.after_args
        )
    }
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    /// The template has its own tool section.
    pub has_tools: bool,
    /// How tool calls are written.
    pub call: CallSyntax,
    bos: String,
    eos: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("has_tools", &self.has_tools)
            .field("call", &self.call)
            .finish()
    }
}

/// JSON as Python's `json.dumps` writes it (`", "` and `": "`), which is what models trained
/// on Hugging Face templates have seen.
pub fn py_json(v: &Value) -> String {
    let mut out = String::new();
    write_py_json(v, &mut out);
    out
}

fn write_py_json(v: &Value, out: &mut String) {
    match v {
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_py_json(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                write_py_json(x, out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn tojson(v: JValue) -> std::result::Result<JValue, JinjaError> {
    let j: Value = serde_json::to_value(&v).map_err(|e| JinjaError::new(ErrorKind::InvalidOperation, e.to_string()))?;
    Ok(JValue::from_safe_string(py_json(&j)))
}

fn raise_exception(msg: String) -> std::result::Result<JValue, JinjaError> {
    Err(JinjaError::new(ErrorKind::InvalidOperation, msg))
}

impl ChatTemplate {
    /// Compile `source` (or ChatML when `None`). `bos`/`eos` are the model's special tokens,
    /// available to the template as `bos_token`/`eos_token`.
    pub fn new(source: Option<&str>, bos: &str, eos: &str) -> Result<Self> {
        let src = source.unwrap_or(CHATML).to_string();
        let mut env = Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("tojson", tojson);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", |fmt: String| {
            chrono::Local::now().format(&fmt).to_string()
        });
        env.add_template_owned("chat", src.clone())
            .map_err(|e| ModelError::Template(format!("the model's chat template does not compile: {e}")))?;
        let mut t = ChatTemplate {
            env,
            has_tools: regex::Regex::new(r"\btools\b")
                .map(|r| r.is_match(&src))
                .unwrap_or(false),
            call: CallSyntax::default(),
            bos: bos.into(),
            eos: eos.into(),
        };
        t.call = t.probe_call_syntax();
        Ok(t)
    }

    fn probe_call_syntax(&self) -> CallSyntax {
        if !self.has_tools {
            return CallSyntax::default();
        }
        let tool = ToolDef {
            name: PROBE_NAME.into(),
            description: "probe".into(),
            parameters: json!({"type": "object", "properties": {PROBE_ARG: {"type": "integer"}}}),
        };
        let user = vec![Message::user("hi")];
        let mut full = user.clone();
        full.push(Message::assistant_call(crate::chat::ToolCall {
            id: None,
            name: PROBE_NAME.into(),
            arguments: json!({PROBE_ARG: 1}),
        }));
        full.push(Message::user("next"));
        let (Ok(head), Ok(all)) = (
            self.render_raw(&user, std::slice::from_ref(&tool), true, true),
            self.render_raw(&full, std::slice::from_ref(&tool), false, true),
        ) else {
            return CallSyntax::default();
        };
        let Some(turn) = all.strip_prefix(head.as_str()) else {
            return CallSyntax::default();
        };
        let args = format!("{{\"{PROBE_ARG}\": 1}}");
        let (Some(n), Some(a)) = (turn.find(PROBE_NAME), turn.find(&args)) else {
            return CallSyntax::default();
        };
        let end_of_turn = turn[a + args.len()..]
            .find(&self.eos_marker())
            .map(|i| a + args.len() + i);
        let Some(end) = end_of_turn else {
            return CallSyntax::default();
        };
        CallSyntax {
            before_name: turn[..n].to_string(),
            before_args: turn[n + PROBE_NAME.len()..a].to_string(),
            after_args: turn[a + args.len()..end].to_string(),
            native: true,
        }
    }

    /// The text that ends an assistant turn: the model's end-of-turn marker.
    fn eos_marker(&self) -> String {
        if self.eos.is_empty() {
            "<|im_end|>".into()
        } else {
            self.eos.clone()
        }
    }

    fn render_raw(
        &self,
        messages: &[Message],
        tools: &[ToolDef],
        add_generation_prompt: bool,
        native_calls: bool,
    ) -> Result<String> {
        let msgs: Vec<Value> = messages.iter().map(|m| self.message_json(m, native_calls)).collect();
        let tools_json: Option<Vec<Value>> = if tools.is_empty() {
            None
        } else {
            Some(
                tools
                    .iter()
                    .map(|t| {
                        json!({"type": "function", "function": {
                            "name": t.name, "description": t.description, "parameters": t.parameters}})
                    })
                    .collect(),
            )
        };
        let tmpl = self
            .env
            .get_template("chat")
            .map_err(|e| ModelError::Template(e.to_string()))?;
        tmpl.render(minijinja::context! {
            messages => JValue::from(minijinja::value::Serde(&msgs)),
            tools => JValue::from(minijinja::value::Serde(&tools_json)),
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos.clone(),
            eos_token => self.eos.clone(),
        })
        .map_err(|e| ModelError::Template(format!("rendering the chat template failed: {e:#}")))
    }

    fn message_json(&self, m: &Message, native_calls: bool) -> Value {
        if m.tool_calls.is_empty() {
            let mut v = json!({"role": m.role.as_str(), "content": m.content});
            if let Some(n) = &m.name {
                v["name"] = json!(n);
            }
            if let Some(id) = &m.tool_call_id {
                v["tool_call_id"] = json!(id);
            }
            return v;
        }
        if native_calls {
            let calls: Vec<Value> = m
                .tool_calls
                .iter()
                .map(
                    |c| json!({"type": "function", "id": c.id, "function": {"name": c.name, "arguments": c.arguments}}),
                )
                .collect();
            return json!({"role": "assistant", "content": m.content, "tool_calls": calls});
        }
        // The template knows nothing of tool calls: write them as the text the model produced.
        let text: Vec<String> = m
            .tool_calls
            .iter()
            .map(|c| self.call.render(&c.name, &c.arguments))
            .collect();
        let content = if m.content.is_empty() {
            text.join("\n")
        } else {
            format!("{}\n{}", m.content, text.join("\n"))
        };
        json!({"role": "assistant", "content": content})
    }

    /// Render a conversation for generation. When `tools` is not empty and the template has no
    /// tool section, the tools are described in the system message (`tools_text`).
    pub fn render(&self, messages: &[Message], tools: &[ToolDef], tools_text: Option<&str>) -> Result<String> {
        let native = self.has_tools && self.call.native;
        if tools.is_empty() || self.has_tools {
            return self.render_raw(messages, tools, true, native);
        }
        let mut msgs = messages.to_vec();
        let text = tools_text
            .map(str::to_string)
            .unwrap_or_else(|| default_tools_text(tools));
        match msgs.first_mut() {
            Some(m) if m.role == Role::System => {
                m.content = format!("{}\n\n{text}", m.content);
            }
            _ => msgs.insert(0, Message::system(text)),
        }
        self.render_raw(&msgs, &[], true, native)
    }
}

/// The tools as a system message, for templates without a tool section.
pub fn default_tools_text(tools: &[ToolDef]) -> String {
    let mut s = String::from(
        "You can call functions. To call one, reply with only a JSON object \
         {\"name\": <function name>, \"arguments\": <arguments object>}. Functions:\n",
    );
    for t in tools {
        s.push_str(&py_json(
            &json!({"name": t.name, "description": t.description, "parameters": t.parameters}),
        ));
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ToolCall;

    const QWEN: &str = include_str!("../tests/data/qwen2.5-chat-template.jinja");
    const SMOL: &str = include_str!("../tests/data/smollm2-chat-template.jinja");

    fn tool() -> ToolDef {
        ToolDef {
            name: "time.now".into(),
            description: "Current time <in a zone>".into(),
            parameters: json!({"type": "object", "properties": {"tz": {"type": "string"}}}),
        }
    }

    #[test]
    fn qwen_template_renders_tools_and_calls() {
        let t = ChatTemplate::new(Some(QWEN), "", "<|im_end|>").unwrap();
        assert!(t.has_tools);
        assert_eq!(
            t.call,
            CallSyntax {
                before_name: "<tool_call>\n{\"name\": \"".into(),
                before_args: "\", \"arguments\": ".into(),
                after_args: "}\n</tool_call>".into(),
                native: true,
            }
        );
        let msgs = vec![
            Message::user("time in Tokyo?"),
            Message::assistant_call(ToolCall {
                id: None,
                name: "time.now".into(),
                arguments: json!({"tz": "Asia/Tokyo"}),
            }),
            Message::tool_result(
                &ToolCall {
                    id: None,
                    name: "time.now".into(),
                    arguments: json!({}),
                },
                "12:00",
            ),
        ];
        let p = t.render(&msgs, &[tool()], None).unwrap();
        // Tools as HF's tojson writes them (no HTML escaping, Python spacing).
        assert!(
            p.contains(
                r#"{"type": "function", "function": {"name": "time.now", "description": "Current time <in a zone>""#
            ),
            "{p}"
        );
        assert!(
            p.contains(
                "<tool_call>\n{\"name\": \"time.now\", \"arguments\": {\"tz\": \"Asia/Tokyo\"}}\n</tool_call><|im_end|>"
            ),
            "{p}"
        );
        assert!(
            p.contains("<|im_start|>user\n<tool_response>\n12:00\n</tool_response><|im_end|>"),
            "{p}"
        );
        assert!(p.ends_with("<|im_start|>assistant\n"));
    }

    #[test]
    fn smollm_template_gets_tools_in_the_system_message() {
        let t = ChatTemplate::new(Some(SMOL), "", "<|im_end|>").unwrap();
        assert!(!t.has_tools);
        assert_eq!(t.call, CallSyntax::default());
        let msgs = vec![
            Message::user("time in Tokyo?"),
            Message::assistant_call(ToolCall {
                id: None,
                name: "time.now".into(),
                arguments: json!({"tz": "Asia/Tokyo"}),
            }),
        ];
        let p = t.render(&msgs, &[tool()], None).unwrap();
        assert!(p.starts_with("<|im_start|>system\nYou can call functions."), "{p}");
        assert!(p.contains("\"name\": \"time.now\""));
        assert!(
            p.contains(
                "<|im_start|>assistant\n{\"name\": \"time.now\", \"arguments\": {\"tz\": \"Asia/Tokyo\"}}<|im_end|>"
            ),
            "{p}"
        );
        assert!(p.ends_with("<|im_start|>assistant\n"));
    }
}
