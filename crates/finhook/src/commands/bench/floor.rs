//! `finhook bench --floor`: what this machine allows with none of finhook's own work. A
//! minimal relay, run as its own process in place of `finhook serve`, answers each ingest
//! `202` and POSTs the same bytes to the bench's receiver with the HTTP stacks finhook uses
//! (hyper behind axum in, reqwest out). It parses nothing, signs nothing and keeps no
//! database; `durable-relay` also appends each body to a file and answers only after a
//! group-committed `fdatasync`, and `postgres-relay` instead inserts each batch of bodies
//! into a PostgreSQL table in one statement (`--database`); both also record each
//! attempt's outcome durably once the receiver answered, as finhook does. The gap between these and `finhook serve` under the same
//! load is what finhook's validation, store, signing and bookkeeping cost.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use bytes::Bytes;
use clap::{Args, ValueEnum};
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::super::{block_on, fail};

/// What the durable floors write: each callback before its `202`, and each delivery
/// attempt's outcome once the receiver answered (as finhook records every attempt).
enum Entry {
    Callback(Bytes),
    Attempt { message_id: String, status: u16 },
}

/// Entries waiting for the durable write, each with the sender of its outcome.
type Log = mpsc::UnboundedSender<(Entry, oneshot::Sender<std::io::Result<()>>)>;

/// Tells every writer of `batch` how its write went (`io::Error` is not `Clone`).
fn answer<T>(batch: &mut Vec<(Entry, oneshot::Sender<std::io::Result<()>>)>, result: &Result<T, std::io::Error>) {
    for (_, done) in batch.drain(..) {
        let _ = done.send(result.as_ref().map(|_| ()).map_err(|e| std::io::Error::new(e.kind(), e.to_string())));
    }
}

/// Writes `entry` through the log; returns once it is durable.
async fn write(log: &Log, entry: Entry) -> std::io::Result<()> {
    let (done, committed) = oneshot::channel();
    log.send((entry, done)).map_err(|_| std::io::Error::other("the writer stopped"))?;
    committed.await.unwrap_or_else(|_| Err(std::io::Error::other("the writer stopped")))
}

/// Which floor `finhook bench --floor` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Floor {
    /// Receive, answer 202, forward: two HTTP hops and nothing else.
    Relay,
    /// The same, answering only after the body is appended to a file and fdatasync'ed
    /// (group commit), and appending each attempt's outcome the same way: the hops plus
    /// the durable writes finhook's contract needs.
    DurableRelay,
    /// The hops plus a committed row per callback and per attempt in PostgreSQL
    /// (`--database`): whatever is waiting goes in one statement (group commit).
    PostgresRelay,
}

impl Floor {
    pub fn name(self) -> &'static str {
        match self {
            Self::Relay => "relay floor",
            Self::DurableRelay => "durable relay floor",
            Self::PostgresRelay => "PostgreSQL relay floor",
        }
    }
}

/// The relay's own command line (a hidden subcommand the bench starts).
#[derive(Debug, Args)]
pub struct FloorServerArgs {
    /// `NAME=URL`: POST each callback of instance NAME to URL (repeat for more endpoints
    /// and instances).
    #[arg(long = "route", required = true)]
    routes: Vec<String>,
    /// Append every body to this file and answer after fdatasync.
    #[arg(long)]
    durable: Option<PathBuf>,
    /// Insert every body into a table of this PostgreSQL database and answer after commit.
    #[arg(long, conflicts_with = "durable")]
    postgres: Option<String>,
}

/// As many forwards in flight as finhook's delivery worker allows by default.
const IN_FLIGHT: usize = 128;

struct Relay {
    http: reqwest::Client,
    /// Instance name → its endpoints' URLs.
    routes: std::collections::HashMap<String, Vec<String>>,
    log: Option<Log>,
    next_id: AtomicU64,
    in_flight: Arc<Semaphore>,
}

/// Runs the relay until it is killed; prints the line the bench waits for.
#[allow(clippy::print_stdout)]
pub fn serve(args: FloorServerArgs) -> ExitCode {
    let log = match &args.durable {
        Some(path) => match std::fs::OpenOptions::new().create(true).append(true).open(path) {
            Ok(file) => Some(group_commit(file)),
            Err(error) => return fail(1, format!("could not open {}: {error}", path.display())),
        },
        None => None,
    };
    let mut routes: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for route in &args.routes {
        match route.split_once('=') {
            Some((name, url)) => routes.entry(name.to_string()).or_default().push(url.to_string()),
            None => return fail(2, format!("--route {route}: expected NAME=URL")),
        }
    }
    block_on(async move {
        let log = match (log, &args.postgres) {
            (None, Some(url)) => match postgres_group_commit(url).await {
                Ok(log) => Some(log),
                Err(error) => return fail(1, format!("could not set up the PostgreSQL floor: {error}")),
            },
            (log, _) => log,
        };
        let http = match reqwest::Client::builder().use_rustls_tls().redirect(reqwest::redirect::Policy::none()).build()
        {
            Ok(http) => http,
            Err(error) => return fail(1, format!("could not build the HTTP client: {error}")),
        };
        let relay = Arc::new(Relay {
            http,
            routes,
            log,
            next_id: AtomicU64::new(0),
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
        });
        let app = axum::Router::new()
            .route("/v1/instances/{name}/callbacks", axum::routing::post(ingest))
            .with_state(relay)
            .layer(axum::extract::DefaultBodyLimit::disable());
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(listener) => listener,
            Err(error) => return fail(1, format!("could not listen: {error}")),
        };
        match listener.local_addr() {
            Ok(addr) => println!("finhook listening on http://{addr}"),
            Err(error) => return fail(1, format!("could not listen: {error}")),
        }
        match axum::serve(listener, app).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => fail(1, format!("the relay stopped: {error}")),
        }
    })
}

async fn ingest(
    State(relay): State<Arc<Relay>>,
    axum::extract::Path(name): axum::extract::Path<String>,
    body: Bytes,
) -> impl IntoResponse {
    let Some(urls) = relay.routes.get(&name).cloned() else {
        return (StatusCode::NOT_FOUND, format!("no route for instance {name}"));
    };
    if let Some(log) = &relay.log {
        if let Err(error) = write(log, Entry::Callback(body.clone())).await {
            return (StatusCode::INSUFFICIENT_STORAGE, error.to_string());
        }
    }
    let id = format!("msg_{:020}", relay.next_id.fetch_add(1, Ordering::Relaxed));
    let answer = format!("{{\"message_id\":\"{id}\"}}");
    for url in urls {
        tokio::spawn(forward(relay.clone(), url, id.clone(), body.clone()));
    }
    (StatusCode::ACCEPTED, answer)
}

async fn forward(relay: Arc<Relay>, url: String, id: String, body: Bytes) {
    let Ok(_slot) = relay.in_flight.clone().acquire_owned().await else { return };
    let sent = relay
        .http
        .post(&url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .body(body)
        .send()
        .await;
    let status = match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            let _ = response.bytes().await;
            status
        }
        Err(_) => 0,
    };
    if let Some(log) = &relay.log {
        let _ = write(log, Entry::Attempt { message_id: id, status }).await;
    }
}

/// A writer thread: takes every body waiting, appends them, one `fdatasync`, then answers
/// them all. Written here rather than with a crate because it is the floor being measured:
/// the least a durable append can do.
fn group_commit(mut file: std::fs::File) -> Log {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Entry, oneshot::Sender<std::io::Result<()>>)>();
    std::thread::spawn(move || {
        let mut batch = Vec::new();
        while let Some(first) = rx.blocking_recv() {
            batch.push(first);
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            let result = batch
                .iter()
                .try_for_each(|(entry, _)| match entry {
                    Entry::Callback(body) => {
                        file.write_all(&(body.len() as u64).to_le_bytes())?;
                        file.write_all(body)
                    }
                    Entry::Attempt { message_id, status } => writeln!(file, "attempt {message_id} {status}"),
                })
                .and_then(|()| file.sync_data());
            answer(&mut batch, &result);
        }
    });
    tx
}

/// A task that inserts every body waiting in one statement, one commit per batch: the
/// least PostgreSQL can be asked for to make a callback durable.
async fn postgres_group_commit(url: &str) -> Result<Log, sqlx::Error> {
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS finhook_bench_floor (id bigserial PRIMARY KEY, body bytea NOT NULL)")
        .execute(&pool)
        .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS finhook_bench_floor_attempts \
         (id bigserial PRIMARY KEY, message_id text NOT NULL, status int NOT NULL, at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(&pool)
    .await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<(Entry, oneshot::Sender<std::io::Result<()>>)>();
    tokio::spawn(async move {
        let mut batch = Vec::new();
        while let Some(first) = rx.recv().await {
            batch.push(first);
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            let (mut bodies, mut ids, mut statuses) = (Vec::<&[u8]>::new(), Vec::<&str>::new(), Vec::<i32>::new());
            for (entry, _) in &batch {
                match entry {
                    Entry::Callback(body) => bodies.push(body),
                    Entry::Attempt { message_id, status } => {
                        ids.push(message_id);
                        statuses.push(i32::from(*status));
                    }
                }
            }
            // Both tables in one statement: one round trip, one commit.
            let result = sqlx::query(
                "WITH a AS (INSERT INTO finhook_bench_floor_attempts (message_id, status) \
                            SELECT * FROM UNNEST($2::text[], $3::int[])) \
                 INSERT INTO finhook_bench_floor (body) SELECT * FROM UNNEST($1::bytea[])",
            )
            .bind(bodies)
            .bind(ids)
            .bind(statuses)
            .execute(&pool)
            .await
            .map(|_| ())
            .map_err(|e| std::io::Error::other(e.to_string()));
            answer(&mut batch, &result);
        }
    });
    Ok(tx)
}
