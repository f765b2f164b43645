//! Which addresses `http.get` may reach, and the DNS check that pins a request to them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use url::{Host, Url};

use crate::{NetPolicy, ToolError};

/// Why `ip` is not a public unicast address, or `None` when it is.
pub fn non_public(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4).map(str::to_string),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match () {
        _ if a == 0 => "unspecified, 0.0.0.0/8",
        _ if ip.is_loopback() => "loopback, 127.0.0.0/8",
        _ if ip.is_private() => "private, RFC 1918",
        _ if ip.is_link_local() => "link-local, 169.254.0.0/16",
        _ if a == 100 && (b & 0xc0) == 64 => "carrier-grade NAT, 100.64.0.0/10",
        _ if ip.is_broadcast() => "broadcast",
        _ if ip.is_multicast() => "multicast, 224.0.0.0/4",
        _ if a >= 240 => "reserved, 240.0.0.0/4",
        _ if a == 192 && b == 0 && c == 0 => "IETF protocol assignments, 192.0.0.0/24",
        _ if a == 198 && (b & 0xfe) == 18 => "benchmarking, 198.18.0.0/15",
        _ => return None,
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<String> {
    let s = ip.segments();
    let embedded = |v4: Ipv4Addr, form: &str| non_public_v4(v4).map(|why| format!("{form} of {v4}: {why}"));
    if let Some(v4) = ip.to_ipv4_mapped() {
        return embedded(v4, "IPv4-mapped form");
    }
    let why = match () {
        _ if ip.is_unspecified() => "unspecified, ::",
        _ if ip.is_loopback() => "loopback, ::1",
        _ if ip.is_multicast() => "multicast, ff00::/8",
        _ if ip.is_unique_local() => "unique local, fc00::/7",
        _ if ip.is_unicast_link_local() => "link-local, fe80::/10",
        _ if (s[0] & 0xffc0) == 0xfec0 => "site-local, fec0::/10",
        _ if s[..6] == [0; 6] => {
            let v4 = Ipv4Addr::from(((s[6] as u32) << 16) | s[7] as u32);
            return embedded(v4, "IPv4-compatible form").or(Some(format!("deprecated IPv4-compatible form of {v4}")));
        }
        _ if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] => {
            return embedded(Ipv4Addr::from(((s[6] as u32) << 16) | s[7] as u32), "NAT64 form");
        }
        _ if s[0] == 0x2002 => {
            return embedded(Ipv4Addr::from(((s[1] as u32) << 16) | s[2] as u32), "6to4 form");
        }
        _ => return None,
    };
    Some(why.to_string())
}

fn refuse(url: &Url, ip: IpAddr, why: &str, via: Option<&str>) -> ToolError {
    let via = via.map(|h| format!("`{h}` resolves to ")).unwrap_or_default();
    ToolError::denied(
        "http.get",
        format!(
            "{url}: {via}{ip}, which is not a public address ({why}); such addresses are refused unless \
             the network policy allows them (`--allow-private-net` / STEPWISE_ALLOW_PRIVATE_NET)"
        ),
    )
}

/// Check where `url` leads. For a host name, resolve it here, refuse if any address is not
/// public (unless `net.allow_private`), and return the checked addresses so the request can be
/// pinned to them (no second lookup that could answer differently). An IP literal returns an
/// empty list: there is nothing to resolve.
pub async fn vet(url: &Url, net: &NetPolicy, budget: Duration) -> Result<Vec<SocketAddr>, ToolError> {
    let port = url.port_or_known_default().unwrap_or(80);
    let host = match url.host() {
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(Host::Domain(_)) => None,
        None => {
            return Err(ToolError::InvalidArguments {
                tool: "http.get".into(),
                field: "url".into(),
                message: format!("`{url}` has no host"),
            });
        }
    };
    if let Some(ip) = host {
        if !net.allow_private
            && let Some(why) = non_public(ip)
        {
            return Err(refuse(url, ip, &why, None));
        }
        return Ok(Vec::new());
    }
    let domain = url.host_str().unwrap_or_default();
    let lookup = tokio::net::lookup_host((domain, port));
    let addrs: Vec<SocketAddr> = match tokio::time::timeout(budget, lookup).await {
        Err(_) => {
            return Err(ToolError::Timeout {
                tool: "http.get".into(),
                millis: budget.as_millis() as u64,
            });
        }
        Ok(Err(e)) => return Err(ToolError::failed("http.get", format!("cannot resolve `{domain}`: {e}"))),
        Ok(Ok(a)) => a.collect(),
    };
    if addrs.is_empty() {
        return Err(ToolError::failed("http.get", format!("`{domain}` has no addresses")));
    }
    if !net.allow_private {
        for a in &addrs {
            if let Some(why) = non_public(a.ip()) {
                return Err(refuse(url, a.ip(), &why, Some(domain)));
            }
        }
    }
    Ok(addrs)
}
