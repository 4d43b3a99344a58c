//! A real `finhook` process (serve or listen) on 127.0.0.1:0 for the tests that need one:
//! started, read from, signalled and killed.

use std::net::SocketAddr;
use std::path::Path;

use tokio::sync::mpsc;

use crate::helpers::{Body, ADMIN_KEY, PATIENCE};

/// The token of `finhook listen --ui`'s pages in the tests (`FINHOOK_LISTEN_UI_TOKEN`).
pub const LISTEN_UI_TOKEN: &str = "listen-ui-token-for-tests";

/// A real `finhook` process (serve or listen) on 127.0.0.1:0, killed when dropped.
pub struct FinhookProcess {
    pub child: tokio::process::Child,
    pub addr: SocketAddr,
    /// What the process printed on stdout before its ready line.
    pub early: Vec<String>,
    /// What the process printed on stdout after its ready line.
    pub stdout: tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>,
}

impl FinhookProcess {
    /// Starts `finhook ARGS` in `dir` and waits for the line `READY_PREFIX<addr>`.
    pub async fn start(dir: &Path, args: &[String], ready_prefix: &str) -> Self {
        Self::start_with_file_limit(dir, args, ready_prefix, None).await
    }

    /// [`FinhookProcess::start`], with at most `max_open_files` open files (soft and hard
    /// limit, set by the shell that then becomes finhook).
    pub async fn start_with_file_limit(
        dir: &Path,
        args: &[String],
        ready_prefix: &str,
        max_open_files: Option<u32>,
    ) -> Self {
        use tokio::io::AsyncBufReadExt;
        let mut command = match max_open_files {
            None => tokio::process::Command::new(env!("CARGO_BIN_EXE_finhook")),
            Some(files) => {
                let mut shell = tokio::process::Command::new("sh");
                shell
                    .arg("-c")
                    .arg(format!("ulimit -n {files} && exec \"$0\" \"$@\""))
                    .arg(env!("CARGO_BIN_EXE_finhook"));
                shell
            }
        };
        let mut child = command
            .args(args)
            .env("FINHOOK_ADMIN_KEY", ADMIN_KEY)
            .env("FINHOOK_LISTEN_UI_TOKEN", LISTEN_UI_TOKEN)
            .env("FINHOOK_LOG", "warn")
            .current_dir(dir)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn finhook");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let mut early = Vec::new();
        let addr = tokio::time::timeout(PATIENCE, async {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                if let Some(addr) = line.strip_prefix(ready_prefix) {
                    return addr.parse::<SocketAddr>().expect("addr");
                }
                early.push(line);
            }
            panic!("finhook exited before listening");
        })
        .await
        .expect("finhook did not start in time");
        // Keep draining stdout so the process never blocks on a full pipe.
        let (printed, stdout) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = printed.send(line);
            }
        });
        Self { child, addr, early, stdout: tokio::sync::Mutex::new(stdout) }
    }

    /// `finhook serve` on a SQLite file in `dir`, loopback endpoints allowed.
    pub async fn serve(dir: &Path) -> Self {
        let args = ["serve", "--listen", "127.0.0.1:0", "--allow-insecure-loopback", "--database"].map(String::from);
        let mut args = args.to_vec();
        args.push(format!("sqlite://{}", dir.join("finhook.db").display()));
        Self::start(dir, &args, "finhook listening on http://").await
    }

    /// `finhook listen` with its store in `dir`, its pages on behind [`LISTEN_UI_TOKEN`],
    /// and the extra flags given.
    pub async fn listen(dir: &Path, extra: &[String]) -> Self {
        let mut args: Vec<String> =
            ["listen", "--ui", "--listen", "127.0.0.1:0", "--database"].map(String::from).to_vec();
        args.push(format!("sqlite://{}", dir.join("receiver.db").display()));
        args.extend_from_slice(extra);
        Self::start(dir, &args, "finhook listen on http://").await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A request to the process's API with the admin key: a JSON body (`Value`), the raw
    /// bytes of a callback (`Vec<u8>`), or none (`()`).
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: impl Into<Body>) -> reqwest::Response {
        let request = reqwest::Client::new().request(method, self.url(path)).bearer_auth(ADMIN_KEY);
        let request = match body.into() {
            Body::Json(json) => request.json(&json),
            Body::Raw(bytes) => request.body(bytes),
            Body::Empty => request,
        };
        request.send().await.expect("a request to finhook")
    }

    /// The next line printed on stdout (waiting at most [`PATIENCE`]).
    pub async fn next_line(&self) -> String {
        let mut stdout = self.stdout.lock().await;
        tokio::time::timeout(PATIENCE, stdout.recv()).await.ok().flatten().expect("a line on stdout")
    }

    /// SIGKILL: no shutdown code runs.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("kill");
    }
}
