//! Which of a resolved service's addresses a node dials, in which order.
//!
//! # Rule
//! 1. IPv4 first (a store LAN always has it; it needs no scope), link-local IPv4
//!    (`169.254/16`, a DHCP fallback) after the others; then routable IPv6 (global or
//!    unique-local); then link-local IPv6 (`fe80::/10`).
//! 2. A link-local IPv6 address is kept *with its scope* (the index of the interface it
//!    was received on, as mdns-sd reports it), because without a scope the kernel cannot
//!    tell which link it is on; one whose scope is unknown (index 0) is skipped.
//! 3. Unspecified, loopback and multicast addresses are skipped: they never name a peer.
//! 4. Duplicates are dropped; within a class addresses are sorted, so the result is
//!    deterministic; at most [`PEER_ADDRS_MAX`] are kept.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};

use mdns_sd::ScopedIp;

/// Most addresses kept for one peer (a device has one or two interfaces; more is noise
/// or an attack).
pub const PEER_ADDRS_MAX: usize = 8;

/// One address of a resolved service, with the interface index it was received on
/// (0 when unknown; only meaningful for IPv6 link-local addresses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResolvedAddr {
    /// The address.
    pub ip: IpAddr,
    /// Interface index (IPv6 scope id, RFC 4007), 0 when unknown.
    pub scope_id: u32,
}

impl From<&ScopedIp> for ResolvedAddr {
    fn from(scoped: &ScopedIp) -> Self {
        let scope_id = match scoped {
            ScopedIp::V6(v6) => v6.scope_id().index,
            _ => 0,
        };
        Self {
            ip: scoped.to_ip_addr(),
            scope_id,
        }
    }
}

fn is_link_local_v6(ip: &Ipv6Addr) -> bool {
    (ip.segments()[0] & 0xffc0) == 0xfe80
}

/// Dialable socket addresses for `port`, following the rule in the module docs.
pub fn peer_socket_addrs(addrs: &[ResolvedAddr], port: u16) -> Vec<SocketAddr> {
    // (class, address): 0 = IPv4, 1 = link-local IPv4, 2 = routable IPv6,
    // 3 = link-local IPv6.
    let mut ranked: Vec<(u8, SocketAddr)> = addrs
        .iter()
        .filter(|a| !(a.ip.is_unspecified() || a.ip.is_loopback() || a.ip.is_multicast()))
        .filter_map(|a| match a.ip {
            IpAddr::V4(v4) => Some((u8::from(v4.is_link_local()), SocketAddr::from((v4, port)))),
            IpAddr::V6(v6) if is_link_local_v6(&v6) => (a.scope_id != 0).then(|| {
                (
                    3,
                    SocketAddr::V6(SocketAddrV6::new(v6, port, 0, a.scope_id)),
                )
            }),
            IpAddr::V6(v6) => Some((2, SocketAddr::V6(SocketAddrV6::new(v6, port, 0, 0)))),
        })
        .collect();
    ranked.sort_by(|(ca, a), (cb, b)| (ca, sort_key(a)).cmp(&(cb, sort_key(b))));
    ranked.dedup();
    ranked.truncate(PEER_ADDRS_MAX);
    ranked.into_iter().map(|(_, addr)| addr).collect()
}

fn sort_key(addr: &SocketAddr) -> (IpAddr, u32) {
    match addr {
        SocketAddr::V4(v4) => (IpAddr::V4(*v4.ip()), 0),
        SocketAddr::V6(v6) => (IpAddr::V6(*v6.ip()), v6.scope_id()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(ip: &str, scope_id: u32) -> ResolvedAddr {
        ResolvedAddr {
            ip: ip.parse().expect("ip"),
            scope_id,
        }
    }

    #[test]
    fn order_scope_and_skips() {
        let got = peer_socket_addrs(
            &[
                a("fe80::2", 3),
                a("fe80::1", 0),
                a("2001:db8::1", 0),
                a("fd00::1", 0),
                a("192.0.2.9", 0),
                a("192.0.2.1", 0),
                a("192.0.2.1", 0),
                a("127.0.0.1", 0),
                a("::1", 0),
                a("0.0.0.0", 0),
                a("224.0.0.251", 0),
                a("ff02::fb", 2),
                a("169.254.1.1", 0),
            ],
            7400,
        );
        let want: Vec<SocketAddr> = [
            "192.0.2.1:7400",
            "192.0.2.9:7400",
            "169.254.1.1:7400",
            "[2001:db8::1]:7400",
            "[fd00::1]:7400",
            "[fe80::2%3]:7400",
        ]
        .iter()
        .map(|s| s.parse().expect("socket addr"))
        .collect();
        assert_eq!(got, want);
        match got.last() {
            Some(SocketAddr::V6(v6)) => assert_eq!(v6.scope_id(), 3),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn bounded() {
        let many: Vec<ResolvedAddr> = (1..=50).map(|i| a(&format!("10.0.0.{i}"), 0)).collect();
        assert_eq!(peer_socket_addrs(&many, 1).len(), PEER_ADDRS_MAX);
        assert!(peer_socket_addrs(&[], 1).is_empty());
    }
}
