//! Outbound HTTP as Spin allows it: only to the manifest's `allowed_outbound_hosts`, so a
//! component that works here does not reach a host its deployment would refuse.
//!
//! An entry is `scheme://host[:port]`; `*` may stand for the scheme, the host, a host's leading
//! labels (`*.example.com`) or the port. Without a port, the scheme's default port is meant.

use std::future::Future;
use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    scheme: Option<String>,
    host: HostRule,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostRule {
    Any,
    Exact(String),
    Suffix(String),
}

/// The allow-list of one component.
#[derive(Debug, Clone, Default)]
pub struct Allowed(Arc<Vec<Rule>>);

impl Allowed {
    pub fn parse(entries: &[String]) -> anyhow::Result<Self> {
        let mut rules = Vec::with_capacity(entries.len());
        for entry in entries {
            rules.push(
                parse_rule(entry).ok_or_else(|| anyhow::anyhow!("allowed_outbound_hosts: cannot read {entry:?}"))?,
            );
        }
        Ok(Self(Arc::new(rules)))
    }

    pub fn permits(&self, uri: &http::Uri) -> bool {
        let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else { return false };
        let Some(port) = uri.port_u16().or_else(|| default_port(scheme)) else { return false };
        let host = host.to_ascii_lowercase();
        self.0.iter().any(|r| {
            r.scheme.as_deref().is_none_or(|s| s.eq_ignore_ascii_case(scheme))
                && match &r.host {
                    HostRule::Any => true,
                    HostRule::Exact(h) => *h == host,
                    HostRule::Suffix(s) => host.ends_with(s.as_str()),
                }
                && match r.port {
                    None => true,
                    Some(p) => p == port,
                }
        })
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

fn parse_rule(entry: &str) -> Option<Rule> {
    let (scheme, rest) = entry.trim().split_once("://")?;
    let rest = rest.trim_end_matches('/');
    let scheme = if scheme == "*" { None } else { Some(scheme.to_ascii_lowercase()) };
    let (host, port) = match rest.rsplit_once(':') {
        // An IPv6 literal's colons are inside brackets.
        Some((h, p)) if !p.contains(']') => (h, Some(p)),
        _ => (rest, None),
    };
    let host = host.to_ascii_lowercase();
    let host = match host.as_str() {
        "*" => HostRule::Any,
        h if h.starts_with("*.") => HostRule::Suffix(h[1..].to_owned()),
        h if !h.is_empty() && !h.contains('*') => {
            HostRule::Exact(h.trim_start_matches('[').trim_end_matches(']').to_owned())
        }
        _ => return None,
    };
    let port = match port {
        Some("*") => None,
        Some(p) => Some(p.parse().ok()?),
        None => Some(default_port(scheme.as_deref()?)?),
    };
    Some(Rule { scheme, host, port })
}

/// The `wasi:http` hooks of every store: the allow-list in front of the default client.
pub struct Hooks {
    pub allowed: Allowed,
}

type SendFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = Result<(), Error>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        drop(fut);
        if !self.allowed.permits(request.uri()) {
            tracing::warn!(uri = %request.uri(), "outbound request refused: not in allowed_outbound_hosts");
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        Box::new(async move {
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((res.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(entries: &[&str]) -> Allowed {
        Allowed::parse(&entries.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn exact_entries_mean_their_scheme_host_and_port() {
        let a = allowed(&["http://127.0.0.1:8080"]);
        assert!(a.permits(&"http://127.0.0.1:8080/mcp".parse().unwrap()));
        assert!(!a.permits(&"http://127.0.0.1:8081/mcp".parse().unwrap()));
        assert!(!a.permits(&"https://127.0.0.1:8080/mcp".parse().unwrap()));
        assert!(!a.permits(&"http://169.254.169.254/".parse().unwrap()));
        let a = allowed(&["https://origin.example.com"]);
        assert!(a.permits(&"https://origin.example.com/x".parse().unwrap()));
        assert!(!a.permits(&"https://origin.example.com:8443/x".parse().unwrap()));
    }

    #[test]
    fn wildcards() {
        let a = allowed(&["*://*.example.com:*"]);
        assert!(a.permits(&"http://a.example.com:9/".parse().unwrap()));
        assert!(!a.permits(&"http://example.org/".parse().unwrap()));
        assert!(allowed(&["http://*:*"]).permits(&"http://10.0.0.1:1/".parse().unwrap()));
        assert!(Allowed::parse(&["nonsense".to_owned()]).is_err());
        assert!(!Allowed::default().permits(&"http://127.0.0.1/".parse().unwrap()));
    }
}
