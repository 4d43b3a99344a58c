//! Which URLs and addresses finhook may deliver to.
//!
//! Webhook URLs are supplied by tenants, so a delivery is a request the server makes on
//! someone else's behalf: private, loopback and link-local addresses are refused unless the
//! operator allows them, both when an endpoint is saved and again at every attempt, after
//! DNS resolution (a name that resolves to a private address is refused too).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use url::{Host, Url};

/// The operator's rules for delivery targets.
#[derive(Debug, Clone, Default)]
pub struct TargetPolicy {
    /// Permits loopback targets, and plain `http://` to them (development and tests).
    pub allow_insecure_loopback: bool,
    /// Private networks that endpoints may nevertheless use (over https).
    pub allowed_networks: Vec<IpNet>,
}

/// Why a URL is not an acceptable endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("not an absolute URL: {0}")]
    NotAUrl(String),
    #[error("the scheme must be https (got {0:?})")]
    Scheme(String),
    #[error("plain http:// is only allowed to a loopback host, and only when the server runs with --allow-insecure-loopback")]
    InsecureScheme,
    #[error("the URL has no host")]
    NoHost,
    #[error("the URL must not carry a user name or password; put credentials in the secret")]
    Credentials,
    #[error("{0} is a private, loopback or reserved address; allow it with --allow-private-network (or --allow-insecure-loopback for loopback)")]
    Blocked(IpAddr),
}

impl TargetPolicy {
    /// Checks a URL as an endpoint target, before any DNS lookup.
    pub fn check_url(&self, raw: &str) -> Result<Url, TargetError> {
        let url = Url::parse(raw).map_err(|e| TargetError::NotAUrl(e.to_string()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(TargetError::Credentials);
        }
        let host = url.host().ok_or(TargetError::NoHost)?;
        let loopback = is_loopback_host(&host);
        match url.scheme() {
            "https" => {}
            "http" if loopback && self.allow_insecure_loopback => {}
            "http" => return Err(TargetError::InsecureScheme),
            other => return Err(TargetError::Scheme(other.to_string())),
        }
        if loopback && !self.allow_insecure_loopback {
            return Err(TargetError::Blocked(match host {
                Host::Ipv4(ip) => IpAddr::V4(ip),
                Host::Ipv6(ip) => IpAddr::V6(ip),
                Host::Domain(_) => IpAddr::from([127, 0, 0, 1]),
            }));
        }
        if let Some(ip) = literal_ip(&host) {
            self.check_ip(ip)?;
        }
        Ok(url)
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), TargetError> {
        let ip = canonical(ip);
        // An IPv6 address that carries an IPv4 one (NAT64, 6to4, IPv4-compatible) reaches
        // that IPv4 host through a translator or tunnel: it is judged by both. Only true
        // loopback counts as loopback for the development flag.
        let reaches = embedded_ipv4(ip).map_or(ip, IpAddr::V4);
        let allowed = (is_global(ip) && is_global(reaches))
            || (ip.is_loopback() && self.allow_insecure_loopback)
            || self.allowed_networks.iter().any(|net| net.contains(&ip) || net.contains(&reaches));
        if allowed {
            Ok(())
        } else {
            Err(TargetError::Blocked(ip))
        }
    }
}

pub fn literal_ip(host: &Host<&str>) -> Option<IpAddr> {
    match host {
        Host::Ipv4(ip) => Some(IpAddr::V4(*ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(*ip)),
        Host::Domain(_) => None,
    }
}

fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => {
            // `localhost.` is the same fully qualified name as `localhost`.
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        other => literal_ip(other).is_some_and(|ip| canonical(ip).is_loopback()),
    }
}

/// IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The IPv4 address an IPv6 one delivers to when the network translates or tunnels it:
/// the NAT64 prefixes (`64:ff9b::/96`, RFC 6052; `64:ff9b:1::/48`, RFC 8215, with the
/// IPv4 address in the last 32 bits as a /96 translator would put it), 6to4 (`2002::/16`,
/// the address in bits 16 to 47) and the deprecated IPv4-compatible form (`::a.b.c.d`,
/// other than `::` and `::1`).
fn embedded_ipv4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else { return None };
    let o = v6.octets();
    let last = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match v6.segments() {
        [0x64, 0xff9b, 0, 0, 0, 0, ..] | [0x64, 0xff9b, 1, ..] => Some(last),
        [0x2002, ..] => Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        [0, 0, 0, 0, 0, 0, ..] if u32::from(last) > 1 => Some(last),
        _ => None,
    }
}

/// Whether an address is publicly routable. Written out because `IpAddr::is_global` is
/// still unstable; the ranges are those of the IANA special-purpose registries.
fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
                || (a == 192 && b == 0 && v4.octets()[2] == 0) // IETF protocol assignments
                || (a == 198 && (18..20).contains(&b)) // benchmarking
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
                || (first == 0x0100 && v6.segments()[1..4] == [0, 0, 0]) // discard only
                || (first == 0x0064 && v6.segments()[1..3] == [0xff9b, 1]) // local-use NAT64
                || (first == 0x2001 && v6.segments()[1] == 0) // Teredo: hides the IPv4 it reaches
                || first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
        }
    }
}

/// Resolution failures, kept as types so an attempt can be classed `dns` or `blocked`.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("could not resolve {host}: {source}")]
    Dns { host: String, source: std::io::Error },
    #[error("{host} resolved only to refused addresses: {reason}")]
    Blocked { host: String, reason: TargetError },
}

/// A DNS resolver for the delivery client that drops refused addresses, so a public name
/// pointing at a private address cannot reach inside the network.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub policy: Arc<TargetPolicy>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|source| ResolveError::Dns { host: host.clone(), source })?
                .collect();
            let mut refusal = None;
            let allowed: Vec<SocketAddr> = addresses
                .into_iter()
                .filter(|addr| match policy.check_ip(addr.ip()) {
                    Ok(()) => true,
                    Err(reason) => {
                        refusal = Some(reason);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let reason = refusal.unwrap_or(TargetError::NoHost);
                return Err(
                    Box::new(ResolveError::Blocked { host, reason }) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> TargetPolicy {
        TargetPolicy::default()
    }

    #[test]
    fn public_https_is_accepted_and_everything_else_explains_itself() {
        assert!(strict().check_url("https://hooks.example.com/flinks").is_ok());
        assert!(strict().check_url("https://93.184.216.34/x").is_ok());
        assert_eq!(strict().check_url("http://hooks.example.com/"), Err(TargetError::InsecureScheme));
        assert_eq!(strict().check_url("ftp://hooks.example.com/"), Err(TargetError::Scheme("ftp".into())));
        assert_eq!(strict().check_url("https://u:p@hooks.example.com/"), Err(TargetError::Credentials));
        assert!(matches!(strict().check_url("/relative"), Err(TargetError::NotAUrl(_))));
        for private in [
            "https://10.1.2.3/",
            "https://192.168.0.1/",
            "https://169.254.169.254/",
            "https://[fd00::1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
        ] {
            assert!(matches!(strict().check_url(private), Err(TargetError::Blocked(_))), "{private}");
        }
    }

    #[test]
    fn loopback_needs_the_flag_and_private_networks_need_the_allow_list() {
        assert!(matches!(strict().check_url("https://127.0.0.1:9/"), Err(TargetError::Blocked(_))));
        assert!(matches!(strict().check_url("https://localhost:9/"), Err(TargetError::Blocked(_))));
        let dev = TargetPolicy { allow_insecure_loopback: true, allowed_networks: vec![] };
        assert!(dev.check_url("http://127.0.0.1:9/hook").is_ok());
        assert!(dev.check_url("http://localhost:9/hook").is_ok());
        assert!(dev.check_url("https://127.0.0.1:9/hook").is_ok());
        assert_eq!(dev.check_url("http://10.0.0.5/"), Err(TargetError::InsecureScheme));
        let lan =
            TargetPolicy { allow_insecure_loopback: false, allowed_networks: vec!["10.0.0.0/8".parse().expect("net")] };
        assert!(lan.check_url("https://10.0.0.5/").is_ok());
        assert!(matches!(lan.check_url("https://192.168.1.1/"), Err(TargetError::Blocked(_))));
    }

    #[test]
    fn ipv6_forms_that_carry_an_ipv4_address_are_judged_by_it() {
        let dev = TargetPolicy { allow_insecure_loopback: true, allowed_networks: vec![] };
        for hidden in [
            "https://[::127.0.0.1]/",                          // IPv4-compatible
            "https://[::10.0.0.1]/",                           // IPv4-compatible, private
            "https://[64:ff9b::7f00:1]/",                      // NAT64 to 127.0.0.1
            "https://[64:ff9b::a9fe:a9fe]/",                   // NAT64 to the metadata address
            "https://[64:ff9b:1::7f00:1]/",                    // local-use NAT64
            "https://[2002:7f00:1::1]/",                       // 6to4 from 127.0.0.1
            "https://[2002:c0a8:101::1]/",                     // 6to4 from 192.168.1.1
            "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", // Teredo
            "https://[100::1]/",                               // discard only
        ] {
            assert!(matches!(strict().check_url(hidden), Err(TargetError::Blocked(_))), "{hidden}");
            // The development flag admits true loopback only, not loopback reached by a translator.
            assert!(matches!(dev.check_url(hidden), Err(TargetError::Blocked(_))), "{hidden} with the flag");
        }
        for public in ["https://[64:ff9b::5db8:d822]/", "https://[2002:5db8:d822::1]/", "https://[2606:4700::1111]/"] {
            assert!(strict().check_url(public).is_ok(), "{public}");
        }
        let lan =
            TargetPolicy { allow_insecure_loopback: false, allowed_networks: vec!["10.0.0.0/8".parse().expect("net")] };
        assert!(lan.check_url("https://[64:ff9b::a00:5]/").is_ok(), "the allow-list applies to the IPv4 reached");
    }

    #[test]
    fn localhost_with_a_trailing_dot_is_localhost() {
        for name in ["https://localhost./", "https://LOCALHOST./x", "https://api.localhost./"] {
            assert!(matches!(strict().check_url(name), Err(TargetError::Blocked(_))), "{name}");
        }
        let dev = TargetPolicy { allow_insecure_loopback: true, allowed_networks: vec![] };
        assert!(dev.check_url("http://localhost.:9/hook").is_ok());
    }
}
