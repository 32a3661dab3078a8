//! Outgoing requests to URLs that customers give us (media to fetch, later webhook
//! destinations) must not reach the gateway's own network: a host is resolved once, every
//! address must be public, and the request is pinned to the address that was checked, so a
//! DNS answer cannot change between the check and the connection.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("the host could not be resolved")]
    Unresolvable,
    #[error("the host resolves to a private, loopback or link-local address")]
    PrivateAddress,
}

pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..=127).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (18..=19).contains(&b)) // benchmarking
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    let first = seg[0];
    // Addresses that carry an IPv4 address inside are judged by that address: NAT64
    // (64:ff9b::/96), IPv4-translated (::ffff:0:a.b.c.d), 6to4 (2002::/16) and the deprecated
    // IPv4-compatible ::a.b.c.d.
    let embedded = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if first == 0x0064 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] {
        return is_public_v4(embedded(seg[6], seg[7]));
    }
    if seg[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return is_public_v4(embedded(seg[6], seg[7]));
    }
    // Local-use NAT64 (64:ff9b:1::/48) reaches a network of the operator's; Teredo
    // (2001::/32) tunnels to IPv4 addresses of its own choosing; 100::/64 discards.
    if (first == 0x0064 && seg[1] == 0xff9b && seg[2] == 0x0001)
        || (first == 0x2001 && seg[1] == 0)
        || (first == 0x0100 && seg[1..4] == [0, 0, 0])
    {
        return false;
    }
    if first == 0x2002 {
        return is_public_v4(embedded(seg[1], seg[2]));
    }
    if seg[..6] == [0, 0, 0, 0, 0, 0] {
        return is_public_v4(embedded(seg[6], seg[7]));
    }
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
}

/// A URL's host as DNS takes it: IPv6 literals come bracketed from URLs.
pub fn bare_host(host: &str) -> &str {
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}

/// Resolves `host` and returns the address to connect to. With `allow_private` (an operator's
/// choice, and the tests') private addresses are accepted too.
pub async fn resolve(host: &str, port: u16, allow_private: bool) -> Result<SocketAddr, GuardError> {
    Ok(resolve_all(host, port, allow_private).await?[0])
}

/// Like [`resolve`], but every address (all checked), for a connector that tries them in turn.
pub async fn resolve_all(host: &str, port: u16, allow_private: bool) -> Result<Vec<SocketAddr>, GuardError> {
    let addrs: Vec<SocketAddr> =
        tokio::net::lookup_host((host, port)).await.map_err(|_| GuardError::Unresolvable)?.collect();
    if addrs.is_empty() {
        return Err(GuardError::Unresolvable);
    }
    if !allow_private && addrs.iter().any(|a| !is_public(a.ip())) {
        return Err(GuardError::PrivateAddress);
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:0:127.0.0.1",
            "::ffff:0:10.0.0.1",
            "64:ff9b:1::808:808",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001::1",
            "100::1",
            "100::ffff:ffff:ffff:ffff",
            "2002:7f00:1::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "2606:4700:4700::1111",
            "64:ff9b::101:101",
            "::ffff:0:8.8.8.8",
            "2001:4860::8888",
            "100:0:0:1::1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn localhost_is_refused_unless_allowed() {
        assert_eq!(resolve("localhost", 443, false).await, Err(GuardError::PrivateAddress));
        assert!(resolve("localhost", 443, true).await.is_ok());
        assert_eq!(resolve("no-such-host.invalid", 443, false).await, Err(GuardError::Unresolvable));
        assert_eq!(resolve(bare_host("[::1]"), 443, false).await, Err(GuardError::PrivateAddress));
    }
}
