//! A supervised connection to one MCP server: connect (stdio child process or streamable
//! HTTP), negotiate the protocol, list tools into the registry, follow `tools/list_changed`,
//! and reconnect with backoff when the server crashes or stops answering.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex as StdMutex, Weak};
use std::time::{Duration, Instant};

#[allow(deprecated)] // Roots are deprecated for 2026-07-28 but are how 2025-11-25 servers learn the workspace.
use rmcp::model::{ClientConfig, ClientRequest, ListRootsResult, ProtocolVersion, Root};
use rmcp::service::{
    ClientLifecycleMode, ClientServiceExt, NotificationContext, RequestContext, RoleClient, RunningService,
    ServiceError,
};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use serde_json::json;
use stepwise_tools::{DynTool, Registry, ToolError};
use tokio::io::AsyncBufReadExt;

use super::tool::McpTool;
use crate::PluginError;
use crate::manifest::{McpPluginSpec, ProtocolChoice, expand, parse_duration};

type Service = RunningService<RoleClient, Handler>;

/// Longest wait between two restarts of a failing server.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a server that timed out gets to answer a ping before it is restarted.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// Lines of a child's stderr kept for error messages.
const STDERR_LINES: usize = 12;

/// How to reach the server.
#[derive(Debug, Clone)]
enum Target {
    Stdio {
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, String>,
        cwd: PathBuf,
    },
    Http {
        url: String,
        headers: BTreeMap<String, String>,
    },
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Target::Stdio { command, args, .. } if args.is_empty() => format!("`{command}`"),
            Target::Stdio { command, args, .. } => format!("`{command} {}`", args.join(" ")),
            Target::Http { url, .. } => url.clone(),
        }
    }
}

enum Conn {
    Up {
        service: Arc<Service>,
        generation: u64,
    },
    Down {
        error: String,
        failures: u32,
        retry_at: Instant,
    },
}

/// One MCP server, supervised. Its tools live in the registry as `<plugin>.<tool>`.
pub struct McpServer {
    pub(crate) name: String,
    target: Target,
    protocol: ProtocolChoice,
    startup_timeout: Duration,
    pub(crate) call_timeout: Duration,
    workspace: PathBuf,
    include: Option<globset::GlobSet>,
    read_only: Option<globset::GlobSet>,
    registry: Registry,
    conn: tokio::sync::Mutex<Conn>,
    generation: std::sync::atomic::AtomicU64,
    stderr: Arc<StdMutex<VecDeque<String>>>,
    me: Weak<McpServer>,
}

fn globs(plugin: &str, field: &str, pats: &[String]) -> Result<globset::GlobSet, PluginError> {
    let mut b = globset::GlobSetBuilder::new();
    for p in pats {
        b.add(
            globset::Glob::new(p)
                .map_err(|e| PluginError::manifest(plugin, field, format!("bad pattern `{p}`: {e}")))?,
        );
    }
    b.build().map_err(|e| PluginError::manifest(plugin, field, e))
}

impl McpServer {
    /// Check the manifest, connect, and register the server's tools. Fails with a clear
    /// error when the server cannot be started or does not finish the handshake in time.
    pub async fn start(
        name: &str,
        spec: &McpPluginSpec,
        workspace: PathBuf,
        registry: Registry,
    ) -> Result<Arc<McpServer>, PluginError> {
        let m = |field: &str, msg: String| PluginError::manifest(name, field, msg);
        let target = match (&spec.command, &spec.url) {
            (Some(c), None) => Target::Stdio {
                command: expand(c, &workspace).map_err(|e| m("/command", e))?,
                args: spec
                    .args
                    .iter()
                    .map(|a| expand(a, &workspace))
                    .collect::<Result<_, _>>()
                    .map_err(|e| m("/args", e))?,
                env: spec
                    .env
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), expand(v, &workspace)?)))
                    .collect::<Result<_, String>>()
                    .map_err(|e| m("/env", e))?,
                cwd: match &spec.cwd {
                    Some(d) => PathBuf::from(expand(d, &workspace).map_err(|e| m("/cwd", e))?),
                    None => workspace.clone(),
                },
            },
            (None, Some(u)) => {
                if !spec.args.is_empty() || !spec.env.is_empty() || spec.cwd.is_some() {
                    return Err(m("", "`args`, `env` and `cwd` apply to `command`, not to `url`".into()));
                }
                Target::Http {
                    url: expand(u, &workspace).map_err(|e| m("/url", e))?,
                    headers: spec
                        .headers
                        .iter()
                        .map(|(k, v)| Ok((k.clone(), expand(v, &workspace)?)))
                        .collect::<Result<_, String>>()
                        .map_err(|e| m("/headers", e))?,
                }
            }
            (Some(_), Some(_)) => return Err(m("", "set `command` or `url`, not both".into())),
            (None, None) => {
                return Err(m(
                    "",
                    "an `mcp` plugin needs `command` (a server started over stdio) or `url` (streamable HTTP)".into(),
                ));
            }
        };
        if matches!(target, Target::Stdio { .. }) && !spec.headers.is_empty() {
            return Err(m("/headers", "`headers` apply to `url`, not to `command`".into()));
        }
        let startup_timeout = parse_duration(
            "startup_timeout",
            spec.startup_timeout.as_deref(),
            Duration::from_secs(30),
        )
        .map_err(|e| m("/startup_timeout", e))?;
        let call_timeout = parse_duration("timeout", spec.timeout.as_deref(), Duration::from_secs(60))
            .map_err(|e| m("/timeout", e))?;
        let include = spec.include.as_ref().map(|p| globs(name, "/include", p)).transpose()?;
        let read_only = if spec.read_only.is_empty() {
            None
        } else {
            Some(globs(name, "/read_only", &spec.read_only)?)
        };
        let server = Arc::new_cyclic(|me| McpServer {
            name: name.to_string(),
            target,
            protocol: spec.protocol.unwrap_or_default(),
            startup_timeout,
            call_timeout,
            workspace,
            include,
            read_only,
            registry,
            conn: tokio::sync::Mutex::new(Conn::Down {
                error: "not started".into(),
                failures: 0,
                retry_at: Instant::now(),
            }),
            generation: std::sync::atomic::AtomicU64::new(0),
            stderr: Arc::new(StdMutex::new(VecDeque::new())),
            me: me.clone(),
        });
        let service = server.connect().await.map_err(|message| PluginError::Start {
            plugin: name.to_string(),
            message,
        })?;
        let generation = server.generation.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        server.refresh_tools(&service).await.map_err(|e| match e {
            RefreshError::Taken(message) => PluginError::NameTaken {
                plugin: name.to_string(),
                message,
            },
            RefreshError::Other(message) => PluginError::Start {
                plugin: name.to_string(),
                message,
            },
        })?;
        server.follow_list_changed(&service);
        *server.conn.lock().await = Conn::Up { service, generation };
        Ok(server)
    }

    /// Registry origin of this server's tools.
    pub fn origin(&self) -> String {
        format!("plugin:{}", self.name)
    }

    /// Protocol version agreed with the server, if connected.
    pub async fn protocol_version(&self) -> Option<String> {
        match &*self.conn.lock().await {
            Conn::Up { service, .. } => service.peer().peer_info().map(|i| i.protocol_version.to_string()),
            Conn::Down { .. } => None,
        }
    }

    fn stderr_tail(&self) -> String {
        let lines = self
            .stderr
            .lock()
            .map(|l| l.iter().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        if lines.is_empty() {
            String::new()
        } else {
            format!("; its last stderr lines: {}", lines.join(" | "))
        }
    }

    fn client_config(&self, version: ProtocolVersion) -> Result<ClientConfig, String> {
        serde_json::from_value(json!({
            "protocolVersion": version,
            "capabilities": {"roots": {"listChanged": false}},
            "clientInfo": {"name": "stepwise", "version": env!("CARGO_PKG_VERSION")},
        }))
        .map_err(|e| format!("internal error building the client info: {e}"))
    }

    /// Start (or reach) the server and do the handshake, within the startup timeout. In
    /// `auto` mode a server that answers `server/discover` with something other than a
    /// discovery result or an error (some answer `{}`) is tried again with `initialize`.
    async fn connect(&self) -> Result<Arc<Service>, String> {
        match self.protocol {
            ProtocolChoice::Auto => {
                let auto = ClientLifecycleMode::Auto {
                    preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                    legacy_version: Some(ProtocolVersion::V_2025_11_25),
                };
                match self.connect_with(auto).await {
                    Ok(s) => Ok(s),
                    Err(e) if !e.contains("did not finish the MCP handshake") => {
                        tracing::debug!(plugin = %self.name, "discovery failed ({e}); trying `initialize`");
                        self.connect_with(ClientLifecycleMode::Initialize).await
                    }
                    Err(e) => Err(e),
                }
            }
            ProtocolChoice::V2025_11_25 => self.connect_with(ClientLifecycleMode::Initialize).await,
            ProtocolChoice::V2026_07_28 => {
                self.connect_with(ClientLifecycleMode::Discover {
                    preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                })
                .await
            }
        }
    }

    async fn connect_with(&self, lifecycle: ClientLifecycleMode) -> Result<Arc<Service>, String> {
        let handler = Handler {
            info: self.client_config(ProtocolVersion::V_2025_11_25)?,
            server: self.me.clone(),
        };
        let what = self.target.describe();
        let fut = async {
            match &self.target {
                Target::Stdio {
                    command,
                    args,
                    env,
                    cwd,
                } => {
                    let mut cmd = tokio::process::Command::new(command);
                    cmd.args(args).envs(env).current_dir(cwd).kill_on_drop(true);
                    let (proc, stderr) = TokioChildProcess::builder(cmd)
                        .stderr(std::process::Stdio::piped())
                        .spawn()
                        .map_err(|e| {
                            if e.kind() == std::io::ErrorKind::NotFound {
                                format!("cannot start {what}: command not found (is it installed and on PATH?)")
                            } else {
                                format!("cannot start {what}: {e}")
                            }
                        })?;
                    if let Some(stderr) = stderr {
                        let buf = self.stderr.clone();
                        if let Ok(mut b) = buf.lock() {
                            b.clear();
                        }
                        let name = self.name.clone();
                        tokio::spawn(async move {
                            let mut lines = tokio::io::BufReader::new(stderr).lines();
                            while let Ok(Some(line)) = lines.next_line().await {
                                tracing::debug!(target: "mcp", plugin = %name, "{line}");
                                if let Ok(mut b) = buf.lock() {
                                    if b.len() == STDERR_LINES {
                                        b.pop_front();
                                    }
                                    b.push_back(line.chars().take(300).collect());
                                }
                            }
                        });
                    }
                    handler
                        .serve_with_lifecycle(proc, lifecycle)
                        .await
                        .map_err(|e| format!("{what}: handshake failed: {e}"))
                }
                Target::Http { url, headers } => {
                    let mut custom = std::collections::HashMap::new();
                    for (k, v) in headers {
                        let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                            .map_err(|e| format!("header `{k}`: {e}"))?;
                        let value =
                            reqwest::header::HeaderValue::from_str(v).map_err(|e| format!("header `{k}`: {e}"))?;
                        custom.insert(name, value);
                    }
                    let config =
                        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
                            url.as_str(),
                        )
                        .custom_headers(custom);
                    let transport = StreamableHttpClientTransport::from_config(config);
                    handler
                        .serve_with_lifecycle(transport, lifecycle)
                        .await
                        .map_err(|e| format!("{what}: handshake failed: {e}"))
                }
            }
        };
        match tokio::time::timeout(self.startup_timeout, fut).await {
            Ok(Ok(s)) => Ok(Arc::new(s)),
            Ok(Err(e)) => Err(format!("{e}{}", self.stderr_tail())),
            Err(_) => Err(format!(
                "{what} did not finish the MCP handshake within {} (raise `startup_timeout` if it is slow to start){}",
                humantime::format_duration(self.startup_timeout),
                self.stderr_tail()
            )),
        }
    }

    /// List the server's tools and put them in the registry in place of the old ones.
    async fn refresh_tools(&self, service: &Service) -> Result<(), RefreshError> {
        let listed = tokio::time::timeout(self.startup_timeout, service.peer().list_all_tools())
            .await
            .map_err(|_| RefreshError::Other("`tools/list` did not answer in time".into()))?
            .map_err(|e| RefreshError::Other(format!("`tools/list` failed: {e}")))?;
        let me = self
            .me
            .upgrade()
            .ok_or_else(|| RefreshError::Other("plugin is shutting down".into()))?;
        let mut tools: Vec<Arc<dyn DynTool>> = Vec::new();
        for t in listed {
            if let Some(inc) = &self.include
                && !inc.is_match(t.name.as_ref())
            {
                continue;
            }
            let forced_ro = self.read_only.as_ref().is_some_and(|g| g.is_match(t.name.as_ref()));
            tools.push(Arc::new(McpTool::new(&me, &t, forced_ro)));
        }
        let errors = self.registry.replace_origin(&self.origin(), tools);
        let mut taken = Vec::new();
        for e in errors {
            match e {
                ToolError::Duplicate { .. } => taken.push(e.to_string()),
                other => tracing::warn!(plugin = %self.name, "tool skipped: {other}"),
            }
        }
        if taken.is_empty() {
            Ok(())
        } else {
            Err(RefreshError::Taken(taken.join("; ")))
        }
    }

    /// A live connection, reconnecting when the last one died and its backoff has passed.
    pub(crate) async fn connection(&self) -> Result<(Arc<Service>, u64), String> {
        let mut conn = self.conn.lock().await;
        if let Conn::Up { service, generation } = &*conn {
            if !service.is_closed() && !service.peer().is_transport_closed() {
                return Ok((service.clone(), *generation));
            }
            let error = format!("the server stopped{}", self.stderr_tail());
            tracing::warn!(plugin = %self.name, "{error}");
            *conn = Conn::Down {
                error,
                failures: 0,
                retry_at: Instant::now(),
            };
        }
        let (error, failures, retry_at) = match &*conn {
            Conn::Down {
                error,
                failures,
                retry_at,
            } => (error.clone(), *failures, *retry_at),
            Conn::Up { .. } => return Err("internal error: connection state".into()),
        };
        let now = Instant::now();
        if now < retry_at {
            return Err(format!(
                "MCP server `{}` is down ({error}); next restart in {} ms",
                self.name,
                (retry_at - now).as_millis()
            ));
        }
        tracing::info!(plugin = %self.name, "restarting MCP server after: {error}");
        match self.connect().await {
            Ok(service) => {
                let generation = self.generation.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if let Err(e) = self.refresh_tools(&service).await {
                    tracing::warn!(plugin = %self.name, "tools not refreshed after restart: {}", e.message());
                }
                self.follow_list_changed(&service);
                *conn = Conn::Up {
                    service: service.clone(),
                    generation,
                };
                Ok((service, generation))
            }
            Err(e) => {
                let failures = failures + 1;
                let backoff = Duration::from_millis(250)
                    .saturating_mul(1u32 << failures.min(10))
                    .min(MAX_BACKOFF);
                *conn = Conn::Down {
                    error: e.clone(),
                    failures,
                    retry_at: Instant::now() + backoff,
                };
                Err(format!(
                    "MCP server `{}` could not be restarted: {e}; next try in {} ms",
                    self.name,
                    backoff.as_millis()
                ))
            }
        }
    }

    /// Forget a connection that failed (if it is still the current one); the next call
    /// restarts the server.
    pub(crate) async fn mark_down(&self, generation: u64, error: String) {
        let mut conn = self.conn.lock().await;
        if let Conn::Up { generation: g, service } = &*conn
            && *g == generation
        {
            service.cancellation_token().cancel();
            *conn = Conn::Down {
                error,
                failures: 0,
                retry_at: Instant::now(),
            };
        }
    }

    /// Whether the server still answers a ping quickly (after a call timed out).
    pub(crate) async fn alive(&self, service: &Service) -> bool {
        let ping = service
            .peer()
            .send_request(ClientRequest::PingRequest(Default::default()));
        matches!(tokio::time::timeout(PING_TIMEOUT, ping).await, Ok(Ok(_)))
    }

    /// Describe a failed request in words a plan author can act on.
    pub(crate) fn explain(&self, e: &ServiceError) -> (String, bool) {
        match e {
            ServiceError::McpError(d) => (format!("the server answered with an error: {}", d.message), false),
            ServiceError::TransportClosed | ServiceError::TransportSend(_) => (
                format!("the connection to the MCP server was lost ({e}){}", self.stderr_tail()),
                true,
            ),
            other => (other.to_string(), false),
        }
    }

    /// Stop the server (a child process is terminated).
    pub async fn shutdown(&self) {
        let mut conn = self.conn.lock().await;
        if let Conn::Up { service, .. } = &*conn {
            service.cancellation_token().cancel();
        }
        *conn = Conn::Down {
            error: "shut down".into(),
            failures: 0,
            retry_at: Instant::now() + Duration::from_secs(3600),
        };
        self.registry.unregister_origin(&self.origin());
    }

    /// On a 2026-07-28 connection, list-changed notices come on a `subscriptions/listen`
    /// stream that has to be asked for; older servers send them unasked (see [`Handler`]).
    fn follow_list_changed(&self, service: &Service) {
        let modern = service
            .peer()
            .peer_info()
            .is_some_and(|i| !i.protocol_version.has_initialize());
        if !modern {
            return;
        }
        let peer = service.peer().clone();
        let me = self.me.clone();
        tokio::spawn(async move {
            let filter = rmcp::model::SubscriptionFilter::builder().tools_list_changed().build();
            let mut sub = match peer.listen(filter).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!("no tools/list_changed subscription: {e}");
                    return;
                }
            };
            while let Ok(Some(n)) = sub.next().await {
                if matches!(n, rmcp::model::ServerNotification::ToolListChangedNotification(_)) {
                    match me.upgrade() {
                        Some(s) => s.on_list_changed().await,
                        None => return,
                    }
                }
            }
        });
    }

    /// Refresh tools after `notifications/tools/list_changed`.
    async fn on_list_changed(&self) {
        let service = match &*self.conn.lock().await {
            Conn::Up { service, .. } => service.clone(),
            Conn::Down { .. } => return,
        };
        match self.refresh_tools(&service).await {
            Ok(()) => tracing::info!(plugin = %self.name, "tool list refreshed"),
            Err(e) => tracing::warn!(plugin = %self.name, "tool list not refreshed: {}", e.message()),
        }
    }

    /// The workspace, offered to the server as its only root.
    #[allow(deprecated)]
    fn roots(&self) -> ListRootsResult {
        let uri = format!("file://{}", self.workspace.display());
        let mut root = Root::new(uri);
        root.name = Some("workspace".into());
        ListRootsResult::new(vec![root])
    }
}

enum RefreshError {
    Taken(String),
    Other(String),
}

impl RefreshError {
    fn message(&self) -> &str {
        match self {
            RefreshError::Taken(m) | RefreshError::Other(m) => m,
        }
    }
}

/// Answers the server's requests: roots (the workspace only), and list-changed notices.
pub(crate) struct Handler {
    info: ClientConfig,
    server: Weak<McpServer>,
}

impl rmcp::ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }

    #[allow(deprecated)]
    async fn list_roots(&self, _cx: RequestContext<RoleClient>) -> Result<ListRootsResult, rmcp::ErrorData> {
        Ok(self.server.upgrade().map(|s| s.roots()).unwrap_or_default())
    }

    async fn on_tool_list_changed(&self, _cx: NotificationContext<RoleClient>) {
        if let Some(s) = self.server.upgrade() {
            // Not inline: the refresh sends a request whose answer this same task delivers.
            tokio::spawn(async move { s.on_list_changed().await });
        }
    }
}
