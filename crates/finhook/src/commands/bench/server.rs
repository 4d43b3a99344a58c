//! The server under test: a child `finhook serve` on 127.0.0.1, and what Linux's /proc says
//! about its memory and CPU time.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;

use super::BENCH_KEY;

/// A server's group-commit totals at one moment (`finhook_store_*_total`).
#[derive(Debug, Clone, Copy, Default)]
pub struct WriterTotals {
    batches: f64,
    writes: f64,
    busy_seconds: f64,
    commit_seconds: f64,
}

/// What the group commit did over a run: from two [`WriterTotals`] `seconds` apart.
#[derive(Debug, serde::Serialize)]
pub struct GroupCommit {
    pub batches: u64,
    /// Writes (ingests, attempt records) per batch.
    pub mean_batch_writes: f64,
    /// The share of the run the writer spent applying batches: near 1, it set the pace.
    pub writer_busy_share: f64,
    /// The share of the run spent in `COMMIT`.
    pub commit_share: f64,
}

impl GroupCommit {
    pub fn between(before: WriterTotals, after: WriterTotals, seconds: f64) -> Self {
        let batches = (after.batches - before.batches).max(0.0);
        let share = |a: f64, b: f64| ((a - b) / seconds.max(f64::EPSILON)).clamp(0.0, 1.0);
        Self {
            batches: batches as u64,
            mean_batch_writes: (after.writes - before.writes).max(0.0) / batches.max(1.0),
            writer_busy_share: share(after.busy_seconds, before.busy_seconds),
            commit_share: share(after.commit_seconds, before.commit_seconds),
        }
    }
}

/// A running `finhook serve`, killed when dropped.
pub struct Server {
    child: tokio::process::Child,
    pub addr: SocketAddr,
    /// The `--database` URL, kept for a restart.
    pub database: String,
    /// The secrets key of this run (base64), kept for a restart and for `--seed`.
    pub secrets_key: String,
    dir: tempfile::TempDir,
}

impl Server {
    /// Starts `finhook serve` on a fresh SQLite file, or on `database` (a PostgreSQL URL)
    /// with a secrets key made for this run.
    pub async fn start(database: Option<&str>) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("could not make a temporary directory: {e}"))?;
        let database = match database {
            Some(url) => url.to_string(),
            None => format!("sqlite://{}", dir.path().join("bench.db").display()),
        };
        let (_, secrets_key) = finhook_core::seal::SealingKey::generate();
        let (child, addr) = spawn(&database, &secrets_key, dir.path()).await?;
        Ok(Self { child, addr, database, secrets_key, dir })
    }

    /// Starts the relay of `finhook bench --floor` in place of the server, forwarding each
    /// instance's callbacks to its endpoints' URLs (`routes`: instance name, URL).
    pub async fn start_floor(
        floor: super::floor::Floor,
        routes: &[(String, String)],
        database: Option<&str>,
    ) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("could not make a temporary directory: {e}"))?;
        let mut args = vec!["bench-floor-server".to_string()];
        for (name, url) in routes {
            args.extend(["--route".into(), format!("{name}={url}")]);
        }
        match (floor, database) {
            (super::floor::Floor::Relay, _) => {}
            (super::floor::Floor::DurableRelay, _) => {
                args.extend(["--durable".into(), dir.path().join("floor.log").display().to_string()]);
            }
            (super::floor::Floor::PostgresRelay, Some(url)) => args.extend(["--postgres".into(), url.into()]),
            (super::floor::Floor::PostgresRelay, None) => {
                return Err("--floor postgres-relay needs --database postgres://…".into());
            }
        }
        let (child, addr) = spawn_process(&args, &[], dir.path()).await?;
        Ok(Self { child, addr, database: String::new(), secrets_key: String::new(), dir })
    }

    /// Stops the server at once (as a crash would: the store is durable), for `--seed` to
    /// write into its store.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Starts the server again on the same store, after [`Server::kill`].
    pub async fn restart(&mut self) -> Result<(), String> {
        let (child, addr) = spawn(&self.database, &self.secrets_key, self.dir.path()).await?;
        (self.child, self.addr) = (child, addr);
        Ok(())
    }

    /// The high-water mark of the server's resident memory (`VmHWM`), in MB.
    pub fn peak_rss_mb(&self) -> f64 {
        let status = self.proc_file("status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    /// CPU time the server has used so far, user plus system, over all its threads.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(&self.proc_file("stat")).unwrap_or(0.0)
    }

    pub async fn stop(mut self) {
        self.kill().await;
    }

    /// The server's group-commit totals as its `/metrics` says (`None` for a floor, which
    /// has none, or if they could not be read).
    pub async fn group_commit(&self, http: &reqwest::Client) -> Option<WriterTotals> {
        let text = http.get(format!("http://{}/metrics", self.addr)).send().await.ok()?.text().await.ok()?;
        let value = |series: &str| {
            text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
        };
        Some(WriterTotals {
            batches: value("finhook_store_batches_total")?,
            writes: value("finhook_store_batch_writes_total")?,
            busy_seconds: value("finhook_store_writer_busy_seconds_total")?,
            commit_seconds: value("finhook_store_commit_seconds_total")?,
        })
    }

    fn proc_file(&self, name: &str) -> String {
        self.child.id().and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/{name}")).ok()).unwrap_or_default()
    }
}

/// Spawns `finhook serve` and waits for the address it listens on.
async fn spawn(
    database: &str,
    secrets_key: &str,
    dir: &std::path::Path,
) -> Result<(tokio::process::Child, SocketAddr), String> {
    let args = ["serve", "--listen", "127.0.0.1:0", "--allow-insecure-loopback", "--database", database];
    let env = [
        ("FINHOOK_ADMIN_KEY", BENCH_KEY),
        ("FINHOOK_SECRETS_KEY", secrets_key),
        // The bench measures the server, not the per-instance rate limit it would hit.
        ("FINHOOK_INGEST_RATE_PER_SECOND", "0"),
    ];
    spawn_process(&args.map(String::from), &env, dir).await
}

/// Spawns this executable with `args` and waits for the address it says it listens on.
async fn spawn_process(
    args: &[String],
    env: &[(&str, &str)],
    dir: &std::path::Path,
) -> Result<(tokio::process::Child, SocketAddr), String> {
    let exe = std::env::current_exe().map_err(|e| format!("could not find the finhook executable: {e}"))?;
    let mut child = tokio::process::Command::new(exe)
        .args(args)
        .envs(env.iter().copied())
        .env("FINHOOK_LOG", "warn")
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("could not start finhook serve: {e}"))?;
    let stdout = child.stdout.take().ok_or("finhook serve has no stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(addr) = line.strip_prefix("finhook listening on http://") {
                return addr.parse::<SocketAddr>().ok();
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or("finhook serve did not start (is --database reachable and empty of other data?)")?;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, addr))
}

/// `utime + stime` of a `/proc/<pid>/stat` line, in seconds. The fields are counted after
/// the command name's closing parenthesis (the name itself may hold spaces); the unit is
/// USER_HZ, which Linux fixes at 100 for user space on every architecture it runs here.
fn cpu_seconds_of(stat: &str) -> Option<f64> {
    const USER_HZ: f64 = 100.0;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the name: state is field 3 of proc(5), utime 14 and stime 15.
    let utime: f64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: f64 = fields.get(15 - 3)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// CPU time this process (the bench: its load generator and receiver) has used so far,
/// not counting the server it started.
pub fn own_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat").ok().and_then(|stat| cpu_seconds_of(&stat)).unwrap_or(0.0)
}

/// The machine's CPU time so far from `/proc/stat`'s first line: `(busy, all)` in ticks of
/// every core together (busy: all but idle and iowait).
pub fn machine_ticks() -> Option<(u64, u64)> {
    machine_ticks_of(&std::fs::read_to_string("/proc/stat").ok()?)
}

fn machine_ticks_of(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    let ticks: Vec<u64> = line.split_whitespace().take(8).map(str::parse).collect::<Result<_, _>>().ok()?;
    let all: u64 = ticks.iter().sum();
    let waiting = ticks.get(3)? + ticks.get(4)?;
    Some((all - waiting, all))
}

#[cfg(test)]
mod tests {
    use super::{cpu_seconds_of, machine_ticks_of};

    #[test]
    fn the_machine_is_busy_for_all_but_idle_and_iowait() {
        let stat = "cpu  100 5 50 800 20 3 2 0 0 0\ncpu0 50 2 25 400 10 1 1 0 0 0\n";
        assert_eq!(machine_ticks_of(stat), Some((160, 980)));
        assert_eq!(machine_ticks_of("intr 1 2 3"), None);
    }

    #[test]
    fn cpu_time_is_read_after_the_command_name() {
        let stat = "4242 (fin hook) S 1 4242 4242 0 -1 4194560 2939 0 0 0 250 75 0 0 20 0 9 0 12 1 2 3";
        assert_eq!(cpu_seconds_of(stat), Some(3.25));
        assert_eq!(cpu_seconds_of("garbage"), None);
    }
}
