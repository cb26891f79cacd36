//! Where push notifications may go. A webhook URL is resolved first and every address it
//! resolves to is checked: loopback, private, carrier-grade NAT, link-local (which holds the
//! cloud metadata endpoints, 169.254.169.254 and fd00:ec2::254), unspecified, broadcast and
//! multicast destinations are refused. The request then goes to the vetted address itself, so a
//! second DNS answer cannot swap in another one. Only https, through no proxy (a proxy would
//! connect wherever it likes); loopback and plain http can be allowed for tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("not a URL: {0}")]
    NotAUrl(String),
    #[error("webhook URLs must be https")]
    Scheme,
    #[error("the URL has no host")]
    NoHost,
    #[error("the host does not resolve: {0}")]
    Unresolvable(String),
    #[error("{host} resolves to {addr}, a {why} address")]
    Address { host: String, addr: IpAddr, why: &'static str },
}

/// A destination that passed the checks: the URL and the address to connect to.
#[derive(Debug, Clone)]
pub struct Vetted {
    pub url: reqwest::Url,
    pub host: String,
    pub addr: SocketAddr,
}

/// Why `ip` may not receive notifications, if it may not.
pub fn forbidden(ip: IpAddr, allow_loopback: bool) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4, allow_loopback),
        IpAddr::V6(v6) => forbidden_v6(v6, allow_loopback),
    }
}

fn forbidden_v4(ip: Ipv4Addr, allow_loopback: bool) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        return (!allow_loopback).then_some("loopback");
    }
    if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local (cloud metadata)")
    } else if a == 0 {
        Some("unspecified")
    } else if ip.is_broadcast() || ip.is_multicast() {
        Some("broadcast or multicast")
    } else if a == 100 && (b & 0xc0) == 64 {
        // 100.64.0.0/10, which also holds Alibaba Cloud's metadata service (100.100.100.200).
        Some("shared (carrier-grade NAT)")
    } else if a == 192 && b == 0 && c == 0 {
        Some("IETF protocol assignment")
    } else if a == 198 && (b & 0xfe) == 18 {
        Some("benchmarking")
    } else if a >= 240 {
        Some("reserved")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr, allow_loopback: bool) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4, allow_loopback);
    }
    let s = ip.segments();
    if ip.is_loopback() {
        return (!allow_loopback).then_some("loopback");
    }
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if s[0] & 0xfe00 == 0xfc00 {
        // fc00::/7, which also holds AWS's IPv6 metadata endpoint fd00:ec2::254.
        Some("private (unique local)")
    } else if s[0] & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64: the IPv4 address inside decides.
        let [x, y] = [s[6], s[7]];
        forbidden_v4(Ipv4Addr::new((x >> 8) as u8, x as u8, (y >> 8) as u8, y as u8), allow_loopback)
    } else {
        None
    }
}

/// Parses `url`, resolves its host and checks every address. Any forbidden address refuses the
/// whole URL: a name that resolves to a public and a private address is not safe to call.
pub async fn vet(url: &str, allow_loopback: bool) -> Result<Vetted, Refused> {
    let parsed = reqwest::Url::parse(url).map_err(|e| Refused::NotAUrl(e.to_string()))?;
    // Notifications carry task content and a token: never in clear text, except to a test's
    // receiver on loopback.
    let scheme_ok = match parsed.scheme() {
        "https" => true,
        "http" => allow_loopback,
        _ => false,
    };
    if !scheme_ok {
        return Err(Refused::Scheme);
    }
    let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or(Refused::NoHost)?.to_owned();
    let port = parsed.port_or_known_default().ok_or(Refused::Scheme)?;
    // Bracketed IPv6 literals arrive as "[::1]"; lookup_host wants them bare.
    let bare = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare.as_str(), port))
        .await
        .map_err(|e| Refused::Unresolvable(e.to_string()))?
        .collect();
    let first = *addrs.first().ok_or_else(|| Refused::Unresolvable("no addresses".into()))?;
    for a in &addrs {
        if let Some(why) = forbidden(a.ip(), allow_loopback) {
            return Err(Refused::Address { host, addr: a.ip(), why });
        }
    }
    Ok(Vetted { url: parsed, host: bare, addr: first })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_destinations_are_refused() {
        let cases: &[(&str, Option<&str>)] = &[
            ("8.8.8.8", None),
            ("2606:4700:4700::1111", None),
            ("127.0.0.1", Some("loopback")),
            ("::1", Some("loopback")),
            ("10.1.2.3", Some("private")),
            ("172.16.0.1", Some("private")),
            ("192.168.1.1", Some("private")),
            ("169.254.169.254", Some("link-local (cloud metadata)")),
            ("100.100.100.200", Some("shared (carrier-grade NAT)")),
            ("0.0.0.0", Some("unspecified")),
            ("255.255.255.255", Some("broadcast or multicast")),
            ("224.0.0.1", Some("broadcast or multicast")),
            ("fd00:ec2::254", Some("private (unique local)")),
            ("fe80::1", Some("link-local")),
            ("::ffff:10.0.0.1", Some("private")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("64:ff9b::a9fe:a9fe", Some("link-local (cloud metadata)")),
            ("::", Some("unspecified")),
        ];
        for (ip, want) in cases {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(forbidden(ip, false), *want, "{ip}");
        }
        assert_eq!(forbidden("127.0.0.1".parse().unwrap(), true), None);
        assert_eq!(forbidden("::1".parse().unwrap(), true), None);
        assert_eq!(forbidden("10.0.0.1".parse().unwrap(), true), Some("private"), "only loopback is switchable");
    }

    #[tokio::test]
    async fn names_are_checked_after_resolution() {
        // localhost is a name, not an address: only resolving it reveals the loopback.
        let e = vet("https://localhost:9/hook", false).await.unwrap_err();
        assert!(matches!(e, Refused::Address { why: "loopback", .. }), "{e}");
        let ok = vet("http://localhost:9/hook", true).await.unwrap();
        assert!(ok.addr.ip().is_loopback());
        assert!(matches!(vet("http://169.254.169.254/latest/meta-data", true).await, Err(Refused::Address { .. })));
        assert!(matches!(vet("http://[fd00:ec2::254]/", true).await, Err(Refused::Address { .. })));
        assert_eq!(vet("file:///etc/passwd", true).await.unwrap_err(), Refused::Scheme);
        // Plain http only under the test switch.
        assert_eq!(vet("http://93.184.215.14/hook", false).await.unwrap_err(), Refused::Scheme);
        assert!(matches!(vet("not a url", true).await, Err(Refused::NotAUrl(_))));
    }
}
