//! stepwise as an MCP server: the registry's tools (built-ins and plugins), each workflow of
//! a directory as a tool (a call is a journaled run), and the resources and prompts of Rhai
//! plugins.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, GetPromptRequestParams, GetPromptResponse,
    GetPromptResult, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, ServerConfig,
    ServerNotification, ServerRequest, SubscribeRequestParams, Tool, UnsubscribeRequestParams,
};
use rmcp::service::{Peer, RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler};
use serde_json::{Map, Value, json};
use stepwise_plugins::{ServedPrompt, ServedResource};
use stepwise_tools::{Interaction, InteractionHandle, ToolContext, ToolSpec};
use tokio_util::sync::CancellationToken;

use crate::Engine;
use crate::plan::{Plan, ToolPolicy};

/// What a server serves; shared by every session.
pub struct ServeState {
    pub engine: Engine,
    /// MCP tool name (`workflow.<file stem>`) → plan.
    pub workflows: BTreeMap<String, Arc<Plan>>,
    /// Plugins whose tools are served under their bare names (`echo`, not `demo.echo`).
    pub bare: BTreeSet<String>,
    /// Which registry tools are exposed (side-effecting ones need an explicit allow).
    pub policy: ToolPolicy,
}

const LEVELS: &[&str] = &[
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

fn level_rank(l: &str) -> usize {
    LEVELS.iter().position(|x| *x == l).unwrap_or(1)
}

/// One MCP session.
#[derive(Clone)]
pub struct McpService {
    state: Arc<ServeState>,
    /// Lowest log level the client wants (`logging/setLevel`).
    min_level: Arc<Mutex<usize>>,
    subscriptions: Arc<Mutex<BTreeSet<String>>>,
}

impl McpService {
    pub fn new(state: Arc<ServeState>) -> Self {
        McpService {
            state,
            min_level: Arc::new(Mutex::new(1)),
            subscriptions: Arc::new(Mutex::new(BTreeSet::new())),
        }
    }

    /// (MCP name, registry name, spec) of every exposed registry tool.
    fn exposed(&self) -> Vec<(String, String, ToolSpec)> {
        let mut out = Vec::new();
        for t in self.state.engine.registry().list() {
            let name = t.spec.name.clone();
            if self.state.policy.refusal(&name, t.spec.side_effects).is_some() {
                continue;
            }
            let plugin = t.origin.strip_prefix("plugin:");
            let mcp_name = match plugin {
                Some(p) if self.state.bare.contains(p) => {
                    name.strip_prefix(&format!("{p}.")).unwrap_or(&name).to_string()
                }
                _ => name.clone(),
            };
            out.push((mcp_name, name, t.spec));
        }
        out
    }
}

fn tool(name: &str, description: &str, schema: &Value, read_only: bool) -> Result<Tool, ErrorData> {
    let mut schema = schema.clone();
    if schema.get("type").is_none() {
        schema["type"] = json!("object");
    }
    serde_json::from_value(json!({
        "name": name,
        "description": description,
        "inputSchema": schema,
        "annotations": {"readOnlyHint": read_only},
    }))
    .map_err(|e| ErrorData::internal_error(format!("tool `{name}`: {e}"), None))
}

fn from_json<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T, ErrorData> {
    serde_json::from_value(v).map_err(|e| ErrorData::internal_error(format!("{what}: {e}"), None))
}

/// A tool's JSON result as an MCP result. `{"$mcp": {...}}` is passed through as is.
fn to_result(v: Value) -> Result<CallToolResult, ErrorData> {
    if let Value::Object(m) = &v
        && m.len() == 1
        && let Some(inner) = m.get("$mcp")
    {
        return from_json(inner.clone(), "`$mcp` result");
    }
    let text = match &v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut r = json!({"content": [{"type": "text", "text": text}]});
    if v.is_object() {
        r["structuredContent"] = v;
    }
    from_json(r, "tool result")
}

fn error_result(message: String) -> Result<CallToolResult, ErrorData> {
    from_json(
        json!({"content": [{"type": "text", "text": message}], "isError": true}),
        "error result",
    )
}

/// Sends a tool's logs, progress and questions to the MCP client that called it.
struct McpInteraction {
    peer: Peer<RoleServer>,
    progress_token: Option<Value>,
    min_level: Arc<Mutex<usize>>,
}

#[async_trait::async_trait]
impl Interaction for McpInteraction {
    async fn log(&self, level: &str, data: Value) {
        let min = self.min_level.lock().map(|m| *m).unwrap_or(1);
        if level_rank(level) < min {
            return;
        }
        let n =
            json!({"method": "notifications/message", "params": {"level": level, "logger": "stepwise", "data": data}});
        if let Ok(n) = serde_json::from_value::<ServerNotification>(n) {
            let _ = self.peer.send_notification(n).await;
        }
    }

    async fn progress(&self, progress: f64, total: Option<f64>, message: Option<String>) {
        let Some(token) = &self.progress_token else { return };
        let mut params = json!({"progressToken": token, "progress": progress});
        if let Some(t) = total {
            params["total"] = json!(t);
        }
        if let Some(m) = message {
            params["message"] = json!(m);
        }
        if let Ok(n) =
            serde_json::from_value::<ServerNotification>(json!({"method": "notifications/progress", "params": params}))
        {
            let _ = self.peer.send_notification(n).await;
        }
    }

    async fn request(&self, method: &str, params: Value) -> Result<Value, String> {
        let caps = self
            .peer
            .peer_info()
            .map(|i| serde_json::to_value(&i.capabilities).unwrap_or_default());
        let cap = match method {
            "sampling/createMessage" => "sampling",
            "elicitation/create" => "elicitation",
            "roots/list" => "roots",
            other => return Err(format!("`{other}` cannot be asked of an MCP client")),
        };
        if caps.as_ref().and_then(|c| c.get(cap)).is_none() {
            return Err(format!(
                "the client does not support `{method}` (no `{cap}` capability)"
            ));
        }
        let req: ServerRequest = serde_json::from_value(json!({"method": method, "params": params}))
            .map_err(|e| format!("`{method}` request is malformed: {e}"))?;
        let answer = self
            .peer
            .send_request(req)
            .await
            .map_err(|e| format!("`{method}` failed: {e}"))?;
        serde_json::to_value(answer).map_err(|e| e.to_string())
    }
}

impl McpService {
    fn tool_context(&self, cx: &RequestContext<RoleServer>) -> ToolContext {
        let mut tcx = ToolContext::new(self.state.engine.workspace().to_path_buf());
        tcx.cancel = cx.ct.child_token();
        let progress_token = cx.meta.get_progress_token().and_then(|t| serde_json::to_value(t).ok());
        tcx.interaction = Some(InteractionHandle(Arc::new(McpInteraction {
            peer: cx.peer.clone(),
            progress_token,
            min_level: self.min_level.clone(),
        })));
        tcx
    }

    async fn run_workflow(
        &self,
        plan: Arc<Plan>,
        args: Map<String, Value>,
        cancel: CancellationToken,
    ) -> CallToolResult {
        let outcome = self.state.engine.run(plan.clone(), args, cancel).await;
        let r = match outcome {
            Ok(o) if o.succeeded() => to_result(json!({"run_id": o.run_id, "status": o.status, "outputs": o.outputs})),
            Ok(o) => error_result(format!(
                "run {} of `{}` {}: {}",
                o.run_id,
                plan.name,
                o.status,
                o.error.unwrap_or_default()
            )),
            Err(e) => error_result(format!("workflow `{}` not run: {e}", plan.name)),
        };
        r.unwrap_or_else(|e| {
            let mut r = CallToolResult::default();
            r.is_error = Some(true);
            tracing::error!("workflow result: {}", e.message);
            r
        })
    }

    async fn find_resource(&self, uri: &str) -> Option<(Arc<ServedResource>, Map<String, Value>)> {
        for r in self.state.engine.plugins().resources().await {
            let mut args = Map::new();
            args.insert("uri".into(), json!(uri));
            if r.spec.uri.as_deref() == Some(uri) {
                return Some((r, args));
            }
            if let Some(t) = &r.spec.uri_template
                && let Some(vars) = match_template(t, uri)
            {
                args.extend(vars.into_iter().map(|(k, v)| (k, Value::String(v))));
                return Some((r, args));
            }
        }
        None
    }

    async fn find_prompt(&self, name: &str) -> Option<Arc<ServedPrompt>> {
        self.state
            .engine
            .plugins()
            .prompts()
            .await
            .into_iter()
            .find(|p| p.spec.name == name)
    }
}

/// Match `uri` against an RFC 6570 level-1 template; the variables' values on success.
pub fn match_template(template: &str, uri: &str) -> Option<Vec<(String, String)>> {
    let mut pattern = String::from("^");
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        pattern.push_str(&regex::escape(&rest[..i]));
        let end = rest[i..].find('}')? + i;
        names.push(rest[i + 1..end].to_string());
        pattern.push_str("([^/]+)");
        rest = &rest[end + 1..];
    }
    pattern.push_str(&regex::escape(rest));
    pattern.push('$');
    let re = regex::Regex::new(&pattern).ok()?;
    let caps = re.captures(uri)?;
    Some(
        names
            .into_iter()
            .enumerate()
            .map(|(i, n)| (n, caps.get(i + 1).map(|m| m.as_str().to_string()).unwrap_or_default()))
            .collect(),
    )
}

impl ServerHandler for McpService {
    fn get_info(&self) -> ServerConfig {
        serde_json::from_value(json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {
                "tools": {"listChanged": false},
                "resources": {"subscribe": true, "listChanged": false},
                "prompts": {"listChanged": false},
                "logging": {},
                "completions": {},
            },
            "serverInfo": {"name": "stepwise", "version": env!("CARGO_PKG_VERSION")},
            "instructions": "Tools of this stepwise installation; tools named `workflow.*` run a workflow and return its outputs.",
        }))
        .unwrap_or_default()
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _cx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut tools = Vec::new();
        for (mcp_name, _, spec) in self.exposed() {
            tools.push(tool(
                &mcp_name,
                &spec.description,
                &spec.parameters,
                !spec.side_effects,
            )?);
        }
        for (name, plan) in &self.state.workflows {
            let desc = plan
                .description
                .clone()
                .unwrap_or_else(|| format!("Runs the stepwise workflow `{}` and returns its outputs.", plan.name));
            tools.push(tool(name, &desc, &plan.inputs_schema, false)?);
        }
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.unwrap_or_default();
        if let Some(plan) = self.state.workflows.get(request.name.as_ref()) {
            return Ok(self.run_workflow(plan.clone(), args, cx.ct.child_token()).await.into());
        }
        let Some((_, reg_name, _)) = self.exposed().into_iter().find(|(n, _, _)| *n == request.name) else {
            return Err(ErrorData::invalid_params(
                format!("unknown tool `{}`", request.name),
                None,
            ));
        };
        let tcx = self.tool_context(&cx);
        let result = match self
            .state
            .engine
            .registry()
            .call(&reg_name, Value::Object(args), &tcx)
            .await
        {
            Ok(v) => to_result(v)?,
            Err(stepwise_tools::ToolError::InvalidArguments { field, message, .. }) => {
                return Err(ErrorData::invalid_params(
                    format!("argument `{field}`: {message}"),
                    None,
                ));
            }
            Err(e) => error_result(e.to_string())?,
        };
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _cx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let mut out = Vec::new();
        for r in self.state.engine.plugins().resources().await {
            if let Some(uri) = &r.spec.uri {
                out.push(
                    json!({"uri": uri, "name": r.spec.name, "description": r.spec.description,
                    "mimeType": r.spec.mime_type.as_deref().unwrap_or("text/plain")}),
                );
            }
        }
        from_json(json!({ "resources": out }), "resources")
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _cx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let mut out = Vec::new();
        for r in self.state.engine.plugins().resources().await {
            if let Some(t) = &r.spec.uri_template {
                out.push(
                    json!({"uriTemplate": t, "name": r.spec.name, "description": r.spec.description,
                    "mimeType": r.spec.mime_type.as_deref().unwrap_or("text/plain")}),
                );
            }
        }
        from_json(json!({ "resourceTemplates": out }), "resource templates")
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri.clone();
        let Some((r, args)) = self.find_resource(&uri).await else {
            return Err(ErrorData::resource_not_found(format!("no resource `{uri}`"), None));
        };
        let tcx = self.tool_context(&cx);
        let v = r
            .read
            .call(Value::Object(args), &tcx)
            .await
            .map_err(|e| ErrorData::internal_error(format!("resource `{uri}` ({}): {e}", r.plugin), None))?;
        let mime = r.spec.mime_type.as_deref().unwrap_or("text/plain");
        let content = match v {
            Value::String(text) => json!({"uri": uri, "mimeType": mime, "text": text}),
            Value::Object(mut m) => {
                m.insert("uri".into(), json!(uri));
                m.entry("mimeType").or_insert(json!(mime));
                Value::Object(m)
            }
            other => json!({"uri": uri, "mimeType": "application/json", "text": other.to_string()}),
        };
        let result: ReadResourceResult = from_json(json!({ "contents": [content] }), "resource contents")?;
        Ok(result.into())
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _cx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if let Ok(mut s) = self.subscriptions.lock() {
            s.insert(request.uri.clone());
        }
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _cx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if let Ok(mut s) = self.subscriptions.lock() {
            s.remove(&request.uri);
        }
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _cx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let prompts: Vec<Value> = self
            .state
            .engine
            .plugins()
            .prompts()
            .await
            .iter()
            .map(|p| {
                let args: Vec<Value> = p
                    .spec
                    .arguments
                    .iter()
                    .map(|a| json!({"name": a.name, "description": a.description, "required": a.required}))
                    .collect();
                json!({"name": p.spec.name, "description": p.spec.description, "arguments": args})
            })
            .collect();
        from_json(json!({ "prompts": prompts }), "prompts")
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let Some(p) = self.find_prompt(&request.name).await else {
            return Err(ErrorData::invalid_params(format!("no prompt `{}`", request.name), None));
        };
        let args = request.arguments.unwrap_or_default();
        for a in &p.spec.arguments {
            if a.required && !args.contains_key(&a.name) {
                return Err(ErrorData::invalid_params(
                    format!("prompt `{}` needs argument `{}`", p.spec.name, a.name),
                    None,
                ));
            }
        }
        let tcx = self.tool_context(&cx);
        let v = p
            .get
            .call(Value::Object(args.into_iter().collect()), &tcx)
            .await
            .map_err(|e| ErrorData::internal_error(format!("prompt `{}`: {e}", p.spec.name), None))?;
        let messages = match v {
            Value::String(text) => json!([{"role": "user", "content": {"type": "text", "text": text}}]),
            other => other,
        };
        let result: GetPromptResult = from_json(
            json!({"description": p.spec.description, "messages": messages}),
            "prompt messages",
        )?;
        Ok(result.into())
    }

    #[allow(deprecated)]
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        _cx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let level = serde_json::to_value(&request)
            .ok()
            .and_then(|v| v["level"].as_str().map(level_rank));
        if let (Some(l), Ok(mut m)) = (level, self.min_level.lock()) {
            *m = l;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_and_extract() {
        let v = match_template("test://template/{id}/data", "test://template/123/data").unwrap();
        assert_eq!(v, vec![("id".to_string(), "123".to_string())]);
        assert!(match_template("test://template/{id}/data", "test://template/1/2/data").is_none());
    }

    #[test]
    fn mcp_results_pass_through_and_values_become_text() {
        let r = to_result(json!({"$mcp": {"content": [{"type": "image", "data": "AA==", "mimeType": "image/png"}]}}))
            .unwrap();
        assert_eq!(serde_json::to_value(&r).unwrap()["content"][0]["type"], "image");
        let r = to_result(json!({"a": 1})).unwrap();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["structuredContent"]["a"], 1);
        assert_eq!(v["content"][0]["text"], "{\"a\":1}");
    }
}
