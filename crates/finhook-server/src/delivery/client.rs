//! The outbound HTTP client: verified TLS, guarded DNS, no redirects, a hard timeout, and
//! failures sorted into the contract's error classes.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use finhook_core::signing::{
    SignatureHeaders, FLINKS_HEADER, SIGNATURE_KID, WEBHOOK_ID, WEBHOOK_SEQUENCE, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP,
};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::target::{literal_ip, GuardedResolver, ResolveError, TargetPolicy};
use crate::store::{ClientIdentity, ErrorClass};

/// How much of a response body an attempt keeps.
pub const EXCERPT_BYTES: usize = 1024;

pub const USER_AGENT: &str = concat!("finhook/", env!("CARGO_PKG_VERSION"));

/// What one POST came to.
#[derive(Debug, Clone)]
pub enum SendOutcome {
    /// `head` is the start of the answer's body, raw: at most [`EXCERPT_BYTES`].
    Answered {
        status: u16,
        head: Vec<u8>,
        latency: Duration,
    },
    Failed {
        class: ErrorClass,
        detail: String,
        latency: Duration,
    },
}

/// Why the delivery client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("could not read the extra root CA {path}")]
    ReadCa { path: String, source: std::io::Error },
    #[error("{path} holds no usable PEM certificate: {reason}")]
    BadCa { path: String, reason: String },
    #[error("the HTTP client could not be built")]
    Build(#[source] reqwest::Error),
}

/// A cheap-to-clone client shared by every delivery.
#[derive(Debug, Clone)]
pub struct DeliveryClient {
    http: reqwest::Client,
    policy: Arc<TargetPolicy>,
    roots: Arc<Vec<reqwest::Certificate>>,
    timeout: Duration,
    /// A client per client certificate (mutual TLS), each with its own connection pool,
    /// keyed by the certificate's fingerprint, so a changed certificate gets a new client.
    with_identity: Arc<Mutex<HashMap<[u8; 32], reqwest::Client>>>,
}

/// Client certificates whose clients are kept; past it they are all dropped (their
/// connections close) and each is rebuilt when next used.
const IDENTITY_CLIENTS: usize = 1024;

/// Reads the extra root CAs (PEM bundles) once, for the delivery client and the
/// certificate watch, which must trust exactly the same roots.
pub fn read_root_cas(paths: &[impl AsRef<Path>]) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let mut roots = Vec::new();
    for path in paths {
        let display = path.as_ref().display().to_string();
        let pem = std::fs::read(path).map_err(|source| ClientError::ReadCa { path: display.clone(), source })?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots.push(cert.map_err(|e| ClientError::BadCa { path: display.clone(), reason: e.to_string() })?);
        }
    }
    Ok(roots)
}

impl DeliveryClient {
    /// A client trusting the web's roots and `extra_roots` (from [`read_root_cas`]).
    pub fn new(
        policy: Arc<TargetPolicy>,
        extra_roots: &[CertificateDer<'static>],
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let roots = extra_roots
            .iter()
            .map(|der| reqwest::Certificate::from_der(der).map_err(ClientError::Build))
            .collect::<Result<Vec<_>, _>>()?;
        let http = Self::builder(&policy, &roots, timeout).build().map_err(ClientError::Build)?;
        Ok(Self { http, policy, roots: Arc::new(roots), timeout, with_identity: Arc::default() })
    }

    fn builder(
        policy: &Arc<TargetPolicy>,
        roots: &[reqwest::Certificate],
        timeout: Duration,
    ) -> reqwest::ClientBuilder {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(true)
            .https_only(false)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(USER_AGENT)
            .dns_resolver(Arc::new(GuardedResolver { policy: policy.clone() }));
        for cert in roots {
            builder = builder.add_root_certificate(cert.clone());
        }
        builder
    }

    /// The client that presents `identity`, built on first use.
    fn client_for(&self, identity: &ClientIdentity) -> Result<reqwest::Client, String> {
        let key = identity.fingerprint;
        let mut clients = self.with_identity.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let tls = identity.reqwest_identity().map_err(|e| format!("the client certificate cannot be used: {e}"))?;
        let client = Self::builder(&self.policy, &self.roots, self.timeout)
            .identity(tls)
            .build()
            .map_err(|e| format!("the client certificate cannot be used: {e}"))?;
        if clients.len() >= IDENTITY_CLIENTS {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// POSTs `body` with the signature headers and reads at most [`EXCERPT_BYTES`] back.
    /// With `identity`, the TLS handshake presents that client certificate.
    pub async fn post(
        &self,
        url: &str,
        body: bytes::Bytes,
        signature: &SignatureHeaders,
        sequence: Option<u64>,
        identity: Option<&ClientIdentity>,
    ) -> SendOutcome {
        let timestamp = signature.webhook_timestamp.to_string();
        let sequence = sequence.map(|n| n.to_string());
        let mut headers = vec![
            (FLINKS_HEADER, signature.flinks_authenticity_key.as_str()),
            (WEBHOOK_ID, signature.webhook_id.as_str()),
            (WEBHOOK_TIMESTAMP, timestamp.as_str()),
            (WEBHOOK_SIGNATURE, signature.webhook_signature.as_str()),
        ];
        if let Some(kids) = &signature.signature_kids {
            headers.push((SIGNATURE_KID, kids.as_str()));
        }
        if let Some(sequence) = &sequence {
            headers.push((WEBHOOK_SEQUENCE, sequence.as_str()));
        }
        self.post_with(url, body, &headers, identity).await
    }

    /// [`DeliveryClient::post`] with exactly `headers` besides `content-type` (the
    /// conformance probe sends some without a signature, or with a wrong one), under the
    /// same target checks, TLS and timeout.
    pub async fn post_with(
        &self,
        url: &str,
        body: bytes::Bytes,
        headers: &[(&str, &str)],
        identity: Option<&ClientIdentity>,
    ) -> SendOutcome {
        let started = Instant::now();
        let failed = |class, detail: String| SendOutcome::Failed { class, detail, latency: started.elapsed() };
        let http = match identity.map(|identity| self.client_for(identity)).transpose() {
            Ok(client) => client.unwrap_or_else(|| self.http.clone()),
            Err(detail) => return failed(ErrorClass::Tls, detail),
        };
        // Literal IPs skip the resolver, so they are checked here; names are checked after resolution.
        let url = match self.policy.check_url(url) {
            Ok(url) => url,
            Err(reason) => return failed(ErrorClass::Blocked, reason.to_string()),
        };
        if let Some(ip) = url.host().as_ref().and_then(literal_ip) {
            if let Err(reason) = self.policy.check_ip(ip) {
                return failed(ErrorClass::Blocked, reason.to_string());
            }
        }
        let mut request = http.post(url).header(http::header::CONTENT_TYPE, "application/json").body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                let (class, detail) = classify(&error);
                return failed(class, detail);
            }
        };
        let status = response.status().as_u16();
        let mut excerpt = Vec::new();
        while excerpt.len() < EXCERPT_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                Ok(None) => break,
                // The status is what decides the attempt; a body cut short is still recorded.
                Err(_) => break,
            }
        }
        excerpt.truncate(EXCERPT_BYTES);
        SendOutcome::Answered { status, head: excerpt, latency: started.elapsed() }
    }

    /// GETs `url` under the same target checks, TLS and timeout; its status and the start
    /// of its body (at most 1 MiB). For the probe's optional check of what a receiver stored.
    pub async fn get(&self, url: &str) -> Result<(u16, Vec<u8>), String> {
        let url = self.policy.check_url(url).map_err(|e| e.to_string())?;
        if let Some(ip) = url.host().as_ref().and_then(literal_ip) {
            self.policy.check_ip(ip).map_err(|e| e.to_string())?;
        }
        let mut response = self.http.get(url).send().await.map_err(|e| classify(&e).1)?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while body.len() < 1 << 20 {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        Ok((status, body))
    }
}

/// Sorts a reqwest failure into an [`ErrorClass`] by walking its cause chain.
fn classify(error: &reqwest::Error) -> (ErrorClass, String) {
    let mut class = if error.is_timeout() {
        ErrorClass::Timeout
    } else if error.is_connect() {
        ErrorClass::Connect
    } else {
        ErrorClass::Http
    };
    let mut detail = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = current {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return (ErrorClass::Tls, format!("TLS: {tls}"));
        }
        if let Some(resolve) = cause.downcast_ref::<ResolveError>() {
            let class = match resolve {
                ResolveError::Dns { .. } => ErrorClass::Dns,
                ResolveError::Blocked { .. } => ErrorClass::Blocked,
            };
            return (class, resolve.to_string());
        }
        detail.push(cause.to_string());
        current = match cause.downcast_ref::<std::io::Error>() {
            Some(io) => {
                if io.kind() == std::io::ErrorKind::TimedOut {
                    class = ErrorClass::Timeout;
                }
                // `io::Error::source` skips the error it wraps; step into it instead.
                io.get_ref().map(|inner| inner as &(dyn std::error::Error + 'static))
            }
            None => cause.source(),
        };
    }
    (class, dedupe_detail(&detail))
}

/// Error chains repeat their causes' messages; keep each text once, and short.
fn dedupe_detail(parts: &[String]) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for part in parts {
        if !kept.iter().any(|k| k.contains(part.as_str())) {
            kept.push(part);
        }
    }
    kept.join(": ").chars().take(500).collect()
}
