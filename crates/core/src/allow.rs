//! The address allowlist: which peers may ask at all.
//!
//! The peer is the kernel's (`getpeername` on the connection, or what
//! `accept` returned), never an environment variable a launcher (or anyone
//! who can start us) sets. An IPv4 client reaching an IPv6 socket shows up
//! as an IPv4-mapped address (`::ffff:10.0.0.5`); it is matched as the IPv4
//! address it is. A peer that cannot be told (the connection is a pipe) is
//! not allowed: what cannot be decided is refused.

use std::net::IpAddr;

use ipnet::IpNet;

/// Networks whose peers are served; everyone else gets 403.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowlist {
    nets: Vec<IpNet>,
}

impl Allowlist {
    /// An allowlist of `nets`; an empty one allows nobody.
    pub fn new(nets: Vec<IpNet>) -> Self {
        Allowlist { nets }
    }

    /// Parses `CIDR[,CIDR…]` as the command line takes it: `10.0.0.0/8`,
    /// `::1/128`, or a bare address for itself alone.
    ///
    /// # Errors
    /// The first entry that is not an address or a network.
    pub fn parse_list(text: &str) -> Result<Vec<IpNet>, String> {
        text.split(',').map(|s| parse_net(s.trim())).collect()
    }

    /// Whether `peer` may ask; `None` (a peer that cannot be told) may not.
    pub fn allows(&self, peer: Option<IpAddr>) -> bool {
        let Some(peer) = peer else {
            return false;
        };
        let peer = unmapped(peer);
        self.nets.iter().any(|net| net.contains(&peer))
    }

    /// The networks.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }
}

/// `::ffff:a.b.c.d` is `a.b.c.d`.
pub fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One network: `ADDR/LEN` or a bare `ADDR`.
///
/// # Errors
/// What was given, and the forms that are right.
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map(|net| match net {
            // An IPv4-mapped network matches what `unmapped` makes of peers.
            IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
                Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, IpNet::V4),
                None => net,
            },
            net => net,
        })
        .map_err(|_| {
            format!("{text:?} is not an address or a network (10.0.0.0/8, 127.0.0.1, ::1/128)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(text: &str) -> Allowlist {
        Allowlist::new(Allowlist::parse_list(text).unwrap())
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn networks_addresses_and_mapped_peers() {
        let a = list("127.0.0.0/8, ::1/128,192.0.2.7");
        assert!(a.allows(ip("127.0.0.1")));
        assert!(a.allows(ip("127.9.9.9")));
        assert!(a.allows(ip("::1")));
        assert!(a.allows(ip("192.0.2.7")));
        assert!(!a.allows(ip("192.0.2.8")));
        assert!(!a.allows(ip("10.0.0.1")));
        // An IPv4 client of an IPv6 socket.
        assert!(a.allows(ip("::ffff:127.0.0.1")));
        assert!(!a.allows(ip("::ffff:10.0.0.1")));
        // A peer that cannot be told is refused.
        assert!(!a.allows(None));
        // Nobody, when nothing is listed.
        assert!(!Allowlist::default().allows(ip("127.0.0.1")));
        // A mapped network matches IPv4 peers.
        assert!(list("::ffff:10.0.0.0/104").allows(ip("10.1.2.3")));
    }

    #[test]
    fn bad_entries_are_named() {
        assert_eq!(
            Allowlist::parse_list("10.0.0.0/8,nope").unwrap_err(),
            "\"nope\" is not an address or a network (10.0.0.0/8, 127.0.0.1, ::1/128)"
        );
        assert!(Allowlist::parse_list("10.0.0.0/33").is_err());
        assert!(Allowlist::parse_list("").is_err());
    }
}
