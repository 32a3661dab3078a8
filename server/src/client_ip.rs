//! The address of the client behind a request. A peer listed in WAG_TRUSTED_PROXIES is a
//! reverse proxy: the client is then the right-most `X-Forwarded-For` entry that is not itself
//! a trusted proxy (entries further left are whatever the client chose to send).
use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use gateway::threecx::allowlist::IpAllowlist;

pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted_proxies: &IpAllowlist) -> IpAddr {
    let peer_ip = peer.ip().to_canonical();
    if !trusted_proxies.contains(peer_ip) {
        return peer_ip;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    // From the right: our proxies' own additions first. The first entry that is not a trusted
    // proxy is the client. An entry we cannot read (`unknown`, garbage) ends the walk: what lies
    // left of it is not vouched for, so the proxy itself stands as the client.
    for entry in entries.iter().rev() {
        let Some(ip) = parse_entry(entry) else { return peer_ip };
        if !trusted_proxies.contains(ip) {
            return ip;
        }
    }
    peer_ip
}

/// `203.0.113.7`, `2001:db8::1`, and the forms with a port some proxies write
/// (`203.0.113.7:5060`, `[2001:db8::1]:5060`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn untrusted_peers_are_the_client() {
        let peer: SocketAddr = "203.0.113.9:5000".parse().unwrap();
        let proxies = IpAllowlist::parse("127.0.0.1").unwrap();
        assert_eq!(client_ip(peer, &headers("198.51.100.1"), &proxies), "203.0.113.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_spoofed_entries_are_ignored() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let proxies = IpAllowlist::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        let ip = client_ip(peer, &headers("1.2.3.4, 198.51.100.7, 10.1.2.3"), &proxies);
        assert_eq!(ip, "198.51.100.7".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(peer, &HeaderMap::new(), &proxies), "127.0.0.1".parse::<IpAddr>().unwrap());
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        assert_eq!(client_ip(mapped, &headers("2001:db8::5"), &proxies), "2001:db8::5".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn unreadable_entries_and_all_trusted_chains_fall_back_to_the_proxy() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let proxies = IpAllowlist::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(client_ip(peer, &headers("198.51.100.7, unknown"), &proxies), proxy);
        assert_eq!(
            client_ip(peer, &headers("198.51.100.7, 10.0.0.9"), &proxies),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(peer, &headers("10.0.0.1, 10.0.0.9"), &proxies), proxy);
        assert_eq!(client_ip(peer, &headers("203.0.113.5:5060"), &proxies), "203.0.113.5".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(peer, &headers("[2001:db8::7]:5060"), &proxies), "2001:db8::7".parse::<IpAddr>().unwrap());
    }
}
