//! `finhook listen`: a ready-made receiver (see the `finhook-receiver` crate).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use finhook_core::signing::asymmetric::PublicKey;
use finhook_receiver::forward::Forwarder;
use finhook_receiver::{FeedSource, JwksCache, Receiver, ReceiverSecret, ReceiverStore, Verifier};
use finhook_server::http::serve::{serve, ServeLimits};

use super::{block_on, error_chain, fail, shutdown_signal};

#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Address to listen on (loopback by default).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7701")]
    listen: SocketAddr,
    /// A verification secret (whsec_... from finhook, or the HMAC key Flinks issued); repeatable during a rotation.
    #[arg(long = "secret", value_name = "SECRET", env = "FINHOOK_LISTEN_SECRET", hide_env_values = true)]
    secrets: Vec<String>,
    /// A public key (whpk_...) that verifies Standard Webhooks v1a (Ed25519) signatures; repeatable.
    #[arg(long = "public-key", value_name = "KEY")]
    public_keys: Vec<String>,
    /// The sender's JWK set (finhook: https://HOST/v1/instances/NAME/.well-known/jwks.json), fetched when needed and cached, for v1a signatures.
    #[arg(long = "jwks-url", value_name = "URL")]
    jwks_url: Option<String>,
    /// Accept webhooks without checking signatures (local experiments only).
    #[arg(long, conflicts_with_all = ["secrets", "public_keys", "jwks_url"])]
    no_verify: bool,
    /// Where received callbacks are stored.
    #[arg(long, value_name = "URL", default_value = "sqlite://receiver.db")]
    database: String,
    /// Relay each new callback (body and signature headers) to this URL; a failure there answers 502 so the sender retries.
    #[arg(long = "forward-to", value_name = "URL")]
    forward_to: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long = "tls-cert", value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long = "tls-key", value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// How far webhook-timestamp may be from this clock, in seconds.
    #[arg(long = "tolerance", value_name = "SECONDS", default_value_t = 300)]
    tolerance_seconds: i64,
    /// Register this receiver as an endpoint of --instance on this finhook server (as
    /// `stripe listen` does): the endpoint's secret is printed once and verifies what
    /// arrives, and the endpoint is deleted when listen stops.
    #[arg(long, value_name = "URL", requires = "instance", conflicts_with = "no_verify")]
    server: Option<String>,
    /// The instance to register with (with --server) or to catch up from (with --catch-up-from).
    #[arg(long, value_name = "NAME")]
    instance: Option<String>,
    /// The admin key or the instance's API key (with --server).
    #[arg(long, env = "FINHOOK_ADMIN_KEY", hide_env_values = true)]
    key: Option<String>,
    /// The URL the server delivers to (with --server); by default this receiver's own
    /// address (loopback: the server needs --allow-insecure-loopback for plain http).
    #[arg(long, value_name = "URL", requires = "server")]
    public_url: Option<String>,
    /// Keep the registered endpoint when listen stops.
    #[arg(long, requires = "server")]
    keep_endpoint: bool,
    /// Serve the pages (`/`, `/logins`, `/events`, `/view/…`), which show the callbacks'
    /// personal data, behind a token printed at start (or FINHOOK_LISTEN_UI_TOKEN); off
    /// without this flag.
    #[arg(long)]
    ui: bool,
    /// Before serving, pull what this receiver missed from this finhook server's catch-up
    /// feed (with --instance and --instance-key), store it, and acknowledge it so the server
    /// stops retrying it; the next start resumes where this one stopped.
    #[arg(long = "catch-up-from", value_name = "URL", requires = "instance", conflicts_with = "forward_to")]
    catch_up_from: Option<String>,
    /// The instance's API key (fhk_...), for --catch-up-from.
    #[arg(long = "instance-key", value_name = "KEY", env = "FINHOOK_INSTANCE_KEY", hide_env_values = true)]
    instance_key: Option<String>,
    /// With --catch-up-from: the endpoint (ep_...) this receiver is; only what that endpoint
    /// has not had is pulled and acknowledged, not what the instance's other endpoints wait for.
    #[arg(long = "catch-up-endpoint", value_name = "ID", requires = "catch_up_from")]
    catch_up_endpoint: Option<String>,
}

/// An endpoint this receiver registered for itself.
struct Registered {
    client: crate::client::Client,
    path: String,
    id: String,
}

/// Creates this receiver's endpoint on the server; its path, id and secret.
async fn register(args: &ListenArgs, own_url: String) -> Result<(Registered, String), String> {
    let (Some(server), Some(instance)) = (&args.server, &args.instance) else {
        return Err("--server needs --instance".into());
    };
    let client =
        crate::client::Client::new(&crate::client::ServerArgs { server: server.clone(), key: args.key.clone() })?;
    let url = args.public_url.clone().unwrap_or(own_url);
    let body = serde_json::json!({ "url": url, "description": "finhook listen" });
    let created =
        client.call(reqwest::Method::POST, &format!("/v1/instances/{instance}/endpoints"), Some(body)).await?;
    let (Some(id), Some(secret)) = (created["id"].as_str(), created["secret"].as_str()) else {
        return Err(format!("the server's answer has no endpoint id or secret: {created}"));
    };
    let path = format!("/v1/instances/{instance}/endpoints/{id}");
    Ok((Registered { client, path, id: id.to_string() }, secret.to_string()))
}

#[allow(clippy::print_stdout)]
pub fn run(args: ListenArgs) -> ExitCode {
    let registers = args.server.is_some();
    if args.secrets.is_empty()
        && args.public_keys.is_empty()
        && args.jwks_url.is_none()
        && !args.no_verify
        && !registers
    {
        return fail(2, "give the signing secret with --secret (or FINHOOK_LISTEN_SECRET), the public key with --public-key or the JWK set with --jwks-url, let listen register its own endpoint with --server URL --instance NAME, or pass --no-verify to accept unsigned webhooks");
    }
    if args.instance.is_some() && args.server.is_none() && args.catch_up_from.is_none() {
        return fail(
            2,
            "--instance goes with --server (to register an endpoint) or --catch-up-from (to read its feed)",
        );
    }
    let feed = match &args.catch_up_from {
        Some(url) => {
            let Some(key) = args.instance_key.as_deref().filter(|key| !key.trim().is_empty()) else {
                return fail(2, "--catch-up-from needs the instance's API key: --instance-key or FINHOOK_INSTANCE_KEY");
            };
            let instance = args.instance.as_deref().unwrap_or_default();
            match FeedSource::new(url, instance, key, args.catch_up_endpoint.as_deref()) {
                Ok(feed) => Some(feed),
                Err(error) => return fail(2, format!("--catch-up-from: {}", error_chain(&error))),
            }
        }
        None => None,
    };
    for secret in &args.secrets {
        if secret.trim().is_empty() {
            return fail(2, "--secret is empty");
        }
        if secret.starts_with("fhk_") {
            return fail(2, "--secret: that is a finhook API key (fhk_...), not an endpoint's signing secret (whsec_...); the secret is in the answer that created the endpoint, or let listen register one with --server URL --instance NAME");
        }
    }
    let mut public_keys = Vec::with_capacity(args.public_keys.len());
    for text in &args.public_keys {
        match PublicKey::parse(text) {
            Ok(key) => public_keys.push(key),
            Err(error) => return fail(2, format!("--public-key {text}: {error}")),
        }
    }
    if let Some(url) = &args.jwks_url {
        if let Err(error) = reqwest::Url::parse(url) {
            return fail(2, format!("--jwks-url {url}: not a URL ({error})"));
        }
    }
    block_on(async move {
        let store = match ReceiverStore::open(&args.database).await {
            Ok(store) => store,
            Err(error) => return fail(1, format!("could not open {}: {}", args.database, error_chain(&error))),
        };
        let listener = match std::net::TcpListener::bind(args.listen).and_then(|l| l.set_nonblocking(true).map(|()| l))
        {
            Ok(listener) => listener,
            Err(error) => return fail(1, format!("could not listen on {}: {error}", args.listen)),
        };
        let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let tls = match finhook_server::http::tls::acceptor(args.tls_cert.as_deref(), args.tls_key.as_deref()) {
            Ok(tls) => tls,
            Err(error) => return fail(1, format!("could not load --tls-cert/--tls-key: {error}")),
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut secrets = args.secrets.clone();
        let registered = if registers {
            match register(&args, format!("{scheme}://{addr}/")).await {
                Ok((registered, secret)) => {
                    println!("registered endpoint {} at {}", registered.id, args.server.as_deref().unwrap_or_default());
                    println!("its signing secret (shown once): {secret}");
                    secrets.push(secret);
                    Some(registered)
                }
                Err(error) => return fail(1, format!("could not register an endpoint: {error}")),
            }
        } else {
            None
        };
        let verifier = if args.no_verify {
            Verifier::disabled()
        } else {
            let verifier = Verifier::new(secrets.iter().map(ReceiverSecret::new).collect())
                .with_public_keys(public_keys)
                .with_tolerance(args.tolerance_seconds);
            match &args.jwks_url {
                Some(url) => verifier.with_jwks(JwksCache::new(url.clone())),
                None => verifier,
            }
        };
        let pages = if args.ui {
            let token = match std::env::var("FINHOOK_LISTEN_UI_TOKEN") {
                Ok(t) if t.len() >= 16 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') => t,
                Ok(_) => return fail(2, "FINHOOK_LISTEN_UI_TOKEN must be at least 16 letters, digits, - or _"),
                Err(_) => finhook_core::secret::random_token(),
            };
            println!("pages (personal data): {scheme}://{addr}/ui?token={token}");
            finhook_receiver::Pages::Token(token.into())
        } else {
            finhook_receiver::Pages::Off
        };
        let mut receiver = Receiver::new(store, verifier).pages(pages).on_receipt(|receipt| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{receipt}");
            let _ = out.flush();
        });
        if let Some(url) = &args.forward_to {
            match Forwarder::new(url.clone(), Duration::from_secs(30)) {
                Ok(forwarder) => receiver = receiver.forward_to(forwarder),
                Err(error) => return fail(1, format!("could not set up forwarding: {error}")),
            }
        }
        if let Some(feed) = &feed {
            // A feed that cannot be read does not keep the receiver from taking webhooks.
            match receiver.catch_up(feed).await {
                Ok(done) => {
                    println!("caught up from the feed: {} callbacks ({} new), acknowledged", done.pulled, done.new)
                }
                Err(error) => {
                    let _ =
                        fail(1, format!("could not catch up from the feed ({}); serving anyway", error_chain(&error)));
                }
            }
        }
        let app = finhook_receiver::router(receiver);
        println!("finhook listen on {scheme}://{addr}");
        // The same accept loop (and TLS) as `finhook serve`: header and idle timeout, and a
        // connection limit under the file limit, so idle clients cannot lock it up.
        let (limits, _) = ServeLimits::default().fitted(0);
        let metrics = Arc::new(finhook_server::metrics::Metrics::new());
        let served = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => serve(listener, app, limits, tls, metrics, shutdown_signal()).await,
            Err(error) => Err(error),
        };
        if let (Some(registered), false) = (registered, args.keep_endpoint) {
            match registered.client.call(reqwest::Method::DELETE, &registered.path, None).await {
                Ok(_) => println!("deleted endpoint {}", registered.id),
                Err(error) => {
                    let _ = fail(1, format!("could not delete endpoint {}: {error}", registered.id));
                }
            }
        }
        match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => fail(1, format!("the receiver stopped: {error}")),
        }
    })
}
