//! The certificate watch: one TLS handshake with an endpoint, as a delivery makes it (same
//! roots, same address policy, the endpoint's client certificate), to see its server
//! certificate (chain, hostname, expiry, TLS version) without sending a request.
//!
//! Written on `tokio-rustls` rather than through the delivery client: reqwest reports a
//! refused certificate as an error only, where the watch must say what it found (the
//! expiry of a certificate for the wrong host, the TLS version of a valid one). A verifier
//! that records rustls' own verdict and lets the handshake finish gives both; nothing is
//! sent over the connection, which is closed at once.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use finhook_core::ids::EndpointId;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use url::Url;

use super::target::TargetPolicy;
use crate::store::certificate::{CertificateReport, EXPIRING_WITHIN};
use crate::store::events::NewEvent;
use crate::store::{ClientIdentity, Store, StoreResult};

/// Why the watch could not be set up (at start-up).
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("an extra root CA cannot be trusted: {0}")]
    BadCa(String),
    #[error("the certificate verifier could not be built")]
    Verifier(#[source] rustls::client::VerifierBuilderError),
}

/// Looks at endpoints' certificates. Cheap to share.
#[derive(Debug)]
pub struct CertificateWatch {
    policy: Arc<TargetPolicy>,
    verifier: Arc<WebPkiServerVerifier>,
    timeout: Duration,
    /// Endpoints whose attempts failed in TLS since the last look (bounded by the number of
    /// endpoints: each is in it once), and when each was last looked at on such a request.
    requested: Mutex<Requested>,
    wake: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct Requested {
    waiting: HashSet<EndpointId>,
    looked_at: HashMap<EndpointId, std::time::Instant>,
}

/// An endpoint whose attempts keep failing in TLS is looked at again at most this often.
pub const RECHECK_AFTER: Duration = Duration::from_secs(60 * 60);

impl CertificateWatch {
    /// The web's roots plus `extra_roots` (from `client::read_root_cas`), as the delivery
    /// client trusts.
    pub fn new(
        policy: Arc<TargetPolicy>,
        extra_roots: &[CertificateDer<'static>],
        timeout: Duration,
    ) -> Result<Self, WatchError> {
        let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        for cert in extra_roots {
            roots.add(cert.clone()).map_err(|e| WatchError::BadCa(e.to_string()))?;
        }
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(WatchError::Verifier)?;
        Ok(Self { policy, verifier, timeout, requested: Mutex::default(), wake: tokio::sync::Notify::new() })
    }

    /// Asks for a look at `endpoint` soon: an attempt to it failed in TLS (a certificate
    /// that expired or was replaced). At most once per [`RECHECK_AFTER`] per endpoint.
    pub fn recheck(&self, endpoint: &EndpointId) {
        let mut requested = self.requested.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let recent = requested.looked_at.get(endpoint).is_some_and(|at| at.elapsed() < RECHECK_AFTER);
        if !recent && requested.waiting.insert(endpoint.clone()) {
            self.wake.notify_one();
        }
    }

    fn take_requested(&self) -> Vec<EndpointId> {
        let mut requested = self.requested.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = std::time::Instant::now();
        if requested.looked_at.len() > 100_000 {
            requested.looked_at.retain(|_, at| now.duration_since(*at) < RECHECK_AFTER);
        }
        let waiting: Vec<EndpointId> = requested.waiting.drain().collect();
        for endpoint in &waiting {
            requested.looked_at.insert(endpoint.clone(), now);
        }
        waiting
    }

    /// What a handshake with `url`'s server shows, presenting `identity` if the endpoint has
    /// one; `None` for a URL without TLS. Never fails: a server that cannot be reached is a
    /// report whose `problem` says so.
    pub async fn inspect(&self, url: &str, identity: Option<&ClientIdentity>) -> Option<CertificateReport> {
        let url = Url::parse(url).ok().filter(|url| url.scheme() == "https")?;
        let checked_at = Utc::now();
        let host = url.host_str()?.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = url.port_or_known_default().unwrap_or(443);
        let unreached = |problem: String| CertificateReport {
            checked_at,
            reached: false,
            tls_version: None,
            chain_valid: false,
            hostname_match: None,
            subject: None,
            issuer: None,
            expires_at: None,
            problem: Some(problem),
        };
        let recording = Arc::new(Recording { inner: self.verifier.clone(), verdict: Mutex::new(None) });
        let handshake =
            match tokio::time::timeout(self.timeout, self.handshake(&host, port, &recording, identity)).await {
                Ok(handshake) => handshake,
                Err(_) => Err(format!("no TLS handshake with {host}:{port} within {} s", self.timeout.as_secs())),
            };
        let verdict = recording.verdict.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        let Some((leaf, verdict)) = verdict else {
            let reason = handshake.err().unwrap_or_else(|| "the server showed no certificate".into());
            return Some(unreached(format!("could not check the certificate: {reason}")));
        };
        let mut report = described(checked_at, &host, &leaf, verdict);
        match handshake {
            Ok(version) => report.tls_version = Some(version),
            Err(reason) if report.problem.is_none() => {
                report.problem = Some(format!("the certificate is valid but the TLS handshake failed: {reason}"));
            }
            Err(_) => {}
        }
        Some(report)
    }

    /// Connects to the first address of `host` the policy allows and shakes hands; the TLS
    /// version on success.
    async fn handshake(
        &self,
        host: &str,
        port: u16,
        recording: &Arc<Recording>,
        identity: Option<&ClientIdentity>,
    ) -> Result<String, String> {
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("could not resolve {host}: {e}"))?
            .collect();
        let address = addresses
            .iter()
            .find(|address| self.policy.check_ip(address.ip()).is_ok())
            .ok_or_else(|| format!("{host} resolved only to addresses deliveries may not go to"))?;
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(recording.clone());
        let config = match identity {
            Some(identity) => {
                let certs = CertificateDer::pem_slice_iter(identity.cert_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?;
                let key =
                    PrivateKeyDer::from_pem_slice(identity.expose_key_pem().as_bytes()).map_err(|e| e.to_string())?;
                builder.with_client_auth_cert(certs, key).map_err(|e| e.to_string())?
            }
            None => builder.with_no_client_auth(),
        };
        let name = ServerName::try_from(host.to_string()).map_err(|e| format!("{host} is not a server name: {e}"))?;
        let tcp = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|e| format!("could not connect to {address}: {e}"))?;
        let tls =
            tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.map_err(|e| e.to_string())?;
        let version = match tls.get_ref().1.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3".to_string(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2".to_string(),
            other => format!("{other:?}"),
        };
        Ok(version)
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The report of a certificate rustls judged `verdict`.
fn described(
    checked_at: DateTime<Utc>,
    host: &str,
    leaf: &[u8],
    verdict: Result<(), rustls::Error>,
) -> CertificateReport {
    let parsed = x509_parser::parse_x509_certificate(leaf).ok().map(|(_, cert)| cert);
    let expires_at =
        parsed.as_ref().and_then(|cert| DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0));
    let (chain_valid, hostname_match, problem) = match verdict {
        Ok(()) => (true, Some(true), None),
        Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => (true, Some(false), Some(format!("the certificate does not name {host}"))),
        Err(rustls::Error::InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. })) => {
            let on = expires_at.map(|end| format!(" on {}", end.format("%Y-%m-%d"))).unwrap_or_default();
            (false, None, Some(format!("the certificate expired{on}")))
        }
        Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
            (false, None, Some("the certificate does not chain to a trusted root (unknown issuer)".into()))
        }
        Err(error) => (false, None, Some(format!("the certificate is not valid: {error}"))),
    };
    CertificateReport {
        checked_at,
        reached: true,
        tls_version: None,
        chain_valid,
        hostname_match,
        subject: parsed.as_ref().map(|cert| cert.subject().to_string()),
        issuer: parsed.as_ref().map(|cert| cert.issuer().to_string()),
        expires_at,
        problem,
    }
}

/// The leaf certificate a server showed, and rustls' verdict on its chain and name.
type Verdict = (Vec<u8>, Result<(), rustls::Error>);

/// rustls' own verifier, whose verdict is recorded instead of ending the handshake.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    /// The leaf certificate and the verdict on it.
    verdict: Mutex<Option<Verdict>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        let mut slot = self.verdict.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *slot = Some((end_entity.to_vec(), verdict.map(drop)));
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// How often every watched endpoint's certificate is looked at again.
pub const CHECK_EVERY: Duration = Duration::from_secs(24 * 60 * 60);

/// Looks at the certificate of every enabled HTTPS endpoint, one at a time, and records
/// what it found; how many it looked at. A certificate that is not valid is logged as a
/// warning; one that expires within [`EXPIRING_WITHIN`], and an endpoint's own client
/// certificate that does, is logged and raises `certificate.expiring` (once per
/// certificate: the event is named after its expiry).
pub async fn check_all(store: &dyn Store, watch: &CertificateWatch) -> StoreResult<usize> {
    let endpoints = store.watched_endpoints().await?;
    for endpoint in &endpoints {
        let now = Utc::now();
        if let Some(own) = endpoint.client_certificate.as_ref().filter(|own| own.expires_at - now < EXPIRING_WITHIN) {
            tracing::warn!(endpoint = %endpoint.id, subject = %own.subject, expires_at = %own.expires_at, "an endpoint's client certificate expires soon");
            let event =
                NewEvent::certificate_expiring(endpoint.instance_id, &endpoint.id, "client", own.expires_at, now);
            store.queue_event(event).await?;
        }
        let identity = match endpoint.client_certificate {
            Some(_) => store.dispatch_endpoint(&endpoint.id, Utc::now()).await?.and_then(|e| e.identity),
            None => None,
        };
        let report = watch.inspect(&endpoint.url, identity.as_deref()).await;
        store.set_endpoint_certificate(&endpoint.id, report.as_ref()).await?;
        let Some(report) = report else { continue };
        if let Some(problem) = &report.problem {
            tracing::warn!(endpoint = %endpoint.id, url = %endpoint.url, problem = %problem, "an endpoint's certificate is not valid");
        } else if let Some(expires_at) = report.expires_at.filter(|_| report.expires_soon(report.checked_at)) {
            tracing::warn!(endpoint = %endpoint.id, url = %endpoint.url, expires_at = %expires_at, "an endpoint's certificate expires soon");
            let (instance, at) = (endpoint.instance_id, report.checked_at);
            store.queue_event(NewEvent::certificate_expiring(instance, &endpoint.id, "server", expires_at, at)).await?;
        }
    }
    Ok(endpoints.len())
}

/// Looks at the endpoints whose attempts failed in TLS since the last call (see
/// [`CertificateWatch::recheck`]); how many it looked at.
pub async fn check_requested(store: &dyn Store, watch: &CertificateWatch) -> StoreResult<usize> {
    let mut checked = 0;
    for id in watch.take_requested() {
        let Some(endpoint) = store.dispatch_endpoint(&id, Utc::now()).await? else { continue };
        let report = watch.inspect(&endpoint.url, endpoint.identity.as_deref()).await;
        store.set_endpoint_certificate(&id, report.as_ref()).await?;
        if let Some(problem) = report.as_ref().and_then(|report| report.problem.as_ref()) {
            tracing::warn!(endpoint = %id, url = %endpoint.url, problem = %problem, "an endpoint's certificate is not valid");
        }
        checked += 1;
    }
    Ok(checked)
}

/// Checks every endpoint now and every [`CHECK_EVERY`], and the ones whose attempts failed
/// in TLS as soon as they do, until `stop` resolves.
pub async fn run(store: Arc<dyn Store>, watch: Arc<CertificateWatch>, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    let mut next_round = tokio::time::Instant::now();
    loop {
        let round = tokio::select! {
            () = &mut stop => return,
            () = watch.wake.notified() => false,
            () = tokio::time::sleep_until(next_round) => true,
        };
        if round {
            next_round = tokio::time::Instant::now() + CHECK_EVERY;
        }
        let checked = tokio::select! {
            () = &mut stop => return,
            checked = async {
                if round {
                    check_all(store.as_ref(), &watch).await
                } else {
                    check_requested(store.as_ref(), &watch).await
                }
            } => checked,
        };
        if let Err(error) = checked {
            tracing::error!(error = %error, "the certificate watch failed; it looks again later");
        }
    }
}
