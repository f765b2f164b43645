//! Helpers shared by the end-to-end tests: find the `stepwise` binary and run it in a
//! scratch directory with its own database and workspace, the way a user would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub mod openai_server;

/// Path of the `stepwise` binary of this workspace, built on first use.
pub fn stepwise_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("STEPWISE_BIN") {
            return PathBuf::from(p);
        }
        // Test executables live in target/<profile>/deps; the binary in target/<profile>.
        let exe = std::env::current_exe().expect("current exe");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target dir");
        let bin = profile_dir.join("stepwise");
        // `cargo test` sets CARGO for the processes it starts; the path baked in at compile
        // time may be gone since (toolchain updates).
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-q", "-p", "stepwise-runtime", "--bin", "stepwise"])
            .current_dir(workspace_root())
            .status()
            .expect("cargo build");
        assert!(status.success(), "building stepwise failed");
        assert!(bin.exists(), "{} missing after build", bin.display());
        bin
    })
    .clone()
}

/// Root of the repository.
pub fn workspace_root() -> PathBuf {
    // `cargo test` tells the test process where the crate is; the path baked in at compile
    // time is only a fallback (a build reused from a copy of the tree would point there).
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A scratch directory with a database and a workspace for one test.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("ws")).unwrap();
        Sandbox { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn db(&self) -> PathBuf {
        self.path("journal.db")
    }

    pub fn workspace(&self) -> PathBuf {
        self.path("ws")
    }

    /// Write a file under the sandbox and return its path.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A `stepwise` command bound to this sandbox's database and workspace.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(stepwise_bin());
        c.current_dir(self.dir.path())
            .env("STEPWISE_DB", self.db())
            .env("STEPWISE_WORKSPACE", self.workspace())
            .env_remove("STEPWISE_LOG")
            .stdin(Stdio::null());
        c
    }

    /// Run `stepwise ARGS…` to completion.
    pub fn run(&self, args: &[&str]) -> Out {
        Out(self.cmd().args(args).output().unwrap())
    }
}

/// Output of a finished command, with helpers for assertions.
pub struct Out(pub Output);

impl Out {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout().trim()).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON value ({e}):\n{}\nstderr:\n{}",
                self.stdout(),
                self.stderr()
            )
        })
    }
    /// Panic with both streams unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code(),
            code,
            "unexpected exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

/// Directory holding the MCP servers and tools installed by `.ci/setup.d/40-mcp.sh`
/// (`$STEPWISE_MCP_BIN`, default `~/.cache/stepwise/mcp/bin`).
pub fn mcp_bin_dir() -> PathBuf {
    if let Ok(p) = std::env::var("STEPWISE_MCP_BIN") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    PathBuf::from(home).join(".cache/stepwise/mcp/bin")
}

/// Path of one installed MCP command; panics with the fix when it is missing.
pub fn mcp_bin(name: &str) -> String {
    let p = mcp_bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run .ci/setup (it installs the MCP servers into ~/.cache/stepwise/mcp)",
        p.display()
    );
    p.display().to_string()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Wait until something accepts connections on `127.0.0.1:port` (at most `secs` seconds).
pub fn wait_for_port(port: u16, secs: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("nothing listens on 127.0.0.1:{port} after {secs}s");
}

/// A child process killed when dropped.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
