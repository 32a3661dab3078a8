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
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .collect();
    forwarded.iter().rev().find(|ip| !trusted_proxies.contains(**ip)).or(forwarded.first()).copied().unwrap_or(peer_ip)
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
}
