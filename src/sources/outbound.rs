//! Which addresses provider requests may reach. A provider URL comes from a file an operator
//! may not fully control (and `follow` URLs from the provider's own answers), so requests to
//! this machine (loopback), to link-local addresses (cloud metadata at 169.254.169.254) and to
//! the unspecified address are refused unless `outbound.allowed_networks` lists their network.
//!
//! Both the literal IP of a URL and every address a host name resolves to are checked: the
//! HTTP client resolves names through [`Outbound::resolver`], so a name that points at a
//! refused address (`localhost`, or a DNS record made to) never gets a connection.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The setting an operator changes to allow a refused address.
pub const SETTING: &str = "outbound.allowed_networks";

/// The outbound policy: refused address kinds, less the allowed networks.
#[derive(Debug, Clone, Default)]
pub struct Outbound {
    allowed: Arc<Vec<IpNet>>,
}

/// A request refused because of where it would go.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "refused: {host} is {kind} ({ip}); provider requests reach it only if `{SETTING}` lists its network (e.g. {example})"
)]
pub struct Refused {
    pub host: String,
    pub ip: IpAddr,
    pub kind: &'static str,
    example: String,
}

impl Outbound {
    /// Parses `networks` (CIDR such as `127.0.0.0/8`, or one address). The error names the
    /// entry that is neither.
    pub fn new(networks: &[String]) -> Result<Outbound, String> {
        let allowed = networks
            .iter()
            .map(|text| parse_network(text))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Outbound {
            allowed: Arc::new(allowed),
        })
    }

    /// The networks allowed although they are internal.
    pub fn allowed(&self) -> &[IpNet] {
        &self.allowed
    }

    /// Why `ip` may not be reached (`None`: it may).
    pub fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        // `::ffff:127.0.0.1` is 127.0.0.1 on the wire.
        let canonical = ip.to_canonical();
        let kind = refused_kind(canonical)?;
        let allowed = self
            .allowed
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical));
        (!allowed).then_some(kind)
    }

    /// Checks a URL whose host is a literal IP address (host names are checked when resolved).
    pub fn check_url(&self, url: &url::Url) -> Result<(), Refused> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            _ => return Ok(()),
        };
        match self.refusal(ip) {
            Some(kind) => Err(refused(url.host_str().unwrap_or_default(), ip, kind)),
            None => Ok(()),
        }
    }

    /// A resolver for the HTTP client that drops refused addresses, and fails when nothing is
    /// left.
    pub fn resolver(&self) -> Arc<Resolver> {
        Arc::new(Resolver {
            outbound: self.clone(),
        })
    }

    /// A redirect policy that checks each target like the first URL (at most 10 hops).
    pub fn redirect_policy(&self) -> reqwest::redirect::Policy {
        let outbound = self.clone();
        reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 {
                return attempt.error("more than 10 redirects");
            }
            match outbound.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        })
    }
}

/// The kind of address that is refused unless allowed; `None` for ordinary addresses.
fn refused_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => Some("a loopback address"),
        IpAddr::V4(v4) if v4.is_link_local() => Some("a link-local address"),
        // 0.0.0.0/8 means "this host" to most stacks: connecting to 0.0.0.0 reaches loopback.
        IpAddr::V4(v4) if v4.octets()[0] == 0 => Some("an unspecified address"),
        IpAddr::V6(v6) if v6.is_loopback() => Some("a loopback address"),
        IpAddr::V6(v6) if v6.is_unspecified() => Some("an unspecified address"),
        IpAddr::V6(v6) if v6.is_unicast_link_local() => Some("a link-local address"),
        _ => None,
    }
}

fn refused(host: &str, ip: IpAddr, kind: &'static str) -> Refused {
    let example = match IpNet::from(ip.to_canonical()) {
        IpNet::V4(_) if kind == "a loopback address" => "127.0.0.0/8".to_string(),
        net => net.to_string(),
    };
    Refused {
        host: host.to_string(),
        ip,
        kind,
        example,
    }
}

fn parse_network(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    IpNet::from_str(text)
        .map(|net| net.trunc())
        .or_else(|_| IpAddr::from_str(text).map(IpNet::from))
        .map_err(|_| {
            format!(
                "`{text}` is not a network; expected CIDR such as 127.0.0.0/8 or fd00::/8, or one address"
            )
        })
}

/// Resolves host names with the system resolver, then applies the policy to every address.
pub struct Resolver {
    outbound: Outbound,
}

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let outbound = self.outbound.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut first_refused = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| match outbound.refusal(addr.ip()) {
                    Some(kind) => {
                        first_refused.get_or_insert((addr.ip(), kind));
                        false
                    }
                    None => true,
                })
                .collect();
            match (allowed.is_empty(), first_refused) {
                (true, Some((ip, kind))) => Err(Box::new(refused(&host, ip, kind)) as _),
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

/// The refusal behind a client error, if that is what stopped the request.
pub fn refusal_in(error: &(dyn std::error::Error + 'static)) -> Option<Refused> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return Some(refused.clone());
        }
        current = e.source();
    }
    None
}

/// Read from settings as a list of networks in CIDR form; a bad one names itself.
impl<'de> serde::Deserialize<'de> for Outbound {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let networks = Vec::<String>::deserialize(deserializer)?;
        Outbound::new(&networks).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn loopback_link_local_and_unspecified_are_refused_by_default() {
        let strict = Outbound::default();
        for (address, kind) in [
            ("127.0.0.1", "a loopback address"),
            ("127.45.0.9", "a loopback address"),
            ("::1", "a loopback address"),
            ("::ffff:127.0.0.1", "a loopback address"),
            ("169.254.169.254", "a link-local address"),
            ("fe80::1", "a link-local address"),
            ("0.0.0.0", "an unspecified address"),
            ("::", "an unspecified address"),
        ] {
            assert_eq!(strict.refusal(ip(address)), Some(kind), "{address}");
        }
        for address in ["93.184.216.34", "10.0.0.1", "2606:4700::1111"] {
            assert_eq!(strict.refusal(ip(address)), None, "{address}");
        }
    }

    #[test]
    fn allowed_networks_let_their_addresses_through() {
        let outbound =
            Outbound::new(&["127.0.0.0/8".to_string(), " ::1 ".to_string()]).expect("valid");
        assert_eq!(outbound.refusal(ip("127.0.0.1")), None);
        assert_eq!(outbound.refusal(ip("::ffff:127.0.0.1")), None);
        assert_eq!(outbound.refusal(ip("::1")), None);
        assert_eq!(
            outbound.refusal(ip("169.254.169.254")),
            Some("a link-local address")
        );
        let error = Outbound::new(&["127.0.0.0/33".to_string()]).expect_err("invalid");
        assert!(
            error.starts_with("`127.0.0.0/33` is not a network"),
            "{error}"
        );
    }

    #[test]
    fn literal_urls_are_checked_in_every_spelling() {
        let strict = Outbound::default();
        for url in [
            "http://127.0.0.1:8080/x",
            "http://2130706433/x",
            "http://0x7f.1/x",
            "http://[::1]/x",
            "http://[::ffff:7f00:1]/x",
            "http://169.254.169.254/latest/meta-data/",
        ] {
            let url = url::Url::parse(url).expect("url");
            assert!(strict.check_url(&url).is_err(), "{url}");
        }
        let error = strict
            .check_url(&url::Url::parse("http://169.254.169.254/").expect("url"))
            .expect_err("refused")
            .to_string();
        assert_eq!(
            error,
            "refused: 169.254.169.254 is a link-local address (169.254.169.254); provider requests reach it only if `outbound.allowed_networks` lists its network (e.g. 169.254.169.254/32)"
        );
        let named = url::Url::parse("https://api.example.com/").expect("url");
        assert!(strict.check_url(&named).is_ok());
    }
}
