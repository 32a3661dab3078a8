//! The optional IP allowlist of a 3CX integration: single addresses and CIDR ranges, IPv4 and
//! IPv6. Empty means every address may call (the secret still has to match).
use std::net::IpAddr;

use ipnet::IpNet;

use crate::error::{Error, Result};

pub const MAX_ENTRIES: usize = 50;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpAllowlist(Vec<IpNet>);

impl IpAllowlist {
    /// Entries separated by commas, spaces or new lines: `203.0.113.7`, `198.51.100.0/24`,
    /// `2001:db8::/32`. Host bits in a range (`10.0.0.1/8`) are refused as a likely typo.
    pub fn parse(text: &str) -> Result<IpAllowlist> {
        let mut nets = Vec::new();
        for entry in text.split(|c: char| c == ',' || c.is_whitespace()).filter(|e| !e.is_empty()) {
            let net = if entry.contains('/') {
                let net: IpNet = entry
                    .parse()
                    .map_err(|_| Error::invalid(format!("{entry:?} is not an IP address or CIDR range.")))?;
                if net.trunc() != net {
                    return Err(Error::invalid(format!(
                        "{entry:?} has bits set after the prefix length; did you mean {}?",
                        net.trunc()
                    )));
                }
                net
            } else {
                let ip: IpAddr = entry
                    .parse()
                    .map_err(|_| Error::invalid(format!("{entry:?} is not an IP address or CIDR range.")))?;
                IpNet::from(ip.to_canonical())
            };
            if !nets.contains(&net) {
                nets.push(net);
            }
        }
        if nets.len() > MAX_ENTRIES {
            return Err(Error::invalid(format!("The allowlist takes at most {MAX_ENTRIES} entries.")));
        }
        Ok(IpAllowlist(nets))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// An IPv4 client reaching a dual-stack listener shows up as `::ffff:a.b.c.d`; it is matched
    /// as the IPv4 address it is.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.is_empty() || self.0.iter().any(|net| net.contains(&ip))
    }

    /// Whether `ip` is listed (an empty list lists nothing).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// How it is stored and shown: one entry per line.
    pub fn to_text(&self) -> String {
        self.0.iter().map(|n| n.to_string()).collect::<Vec<_>>().join("\n")
    }

    pub fn entries(&self) -> Vec<String> {
        self.0.iter().map(|n| n.to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn single_addresses_and_ranges_of_both_families() {
        let list = IpAllowlist::parse("203.0.113.7, 198.51.100.0/24\n2001:db8::/32 2001:db8:ffff::1").unwrap();
        assert!(list.allows(ip("203.0.113.7")));
        assert!(!list.allows(ip("203.0.113.8")));
        assert!(list.allows(ip("198.51.100.200")));
        assert!(!list.allows(ip("198.51.101.1")));
        assert!(list.allows(ip("2001:db8:1234::5")));
        assert!(!list.allows(ip("2001:db9::1")));
        assert_eq!(list.entries().len(), 4);
    }

    #[test]
    fn ipv4_mapped_clients_match_ipv4_entries() {
        let list = IpAllowlist::parse("127.0.0.1").unwrap();
        assert!(list.allows(ip("::ffff:127.0.0.1")));
        assert!(!list.allows(ip("::1")));
    }

    #[test]
    fn empty_allows_everyone() {
        let list = IpAllowlist::parse("  \n ").unwrap();
        assert!(list.is_empty());
        assert!(list.allows(ip("192.0.2.1")));
    }

    #[test]
    fn bad_entries_are_refused_with_the_entry_named() {
        for bad in ["10.0.0.256", "10.0.0.0/33", "example.com", "10.0.0.1/8", "2001:db8::1/32"] {
            let e = IpAllowlist::parse(bad).unwrap_err();
            assert!(e.user_message().contains(bad), "{bad}: {}", e.user_message());
        }
    }
}
