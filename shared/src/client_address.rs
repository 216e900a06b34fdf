//! Who is asking: the client's address as rate limits, sign-in throttles, OTP caps and the
//! audit log see it.
//!
//! Behind a load balancer every connection comes from the balancer, so the client's own
//! address is read from the one header the proxies write (`TRUSTED_PROXY_HEADER`:
//! `X-Forwarded-For` by default, or `Forwarded`), but only when the connection comes from a
//! proxy listed in `TRUSTED_PROXIES`: anyone else could write any address there. The other
//! header is never read: most balancers append to one and pass the client's copy of the other
//! through untouched, so reading it would let a client name itself. The list is read from the
//! right (the hop nearest to us) past every trusted proxy; the first
//! address that is not a trusted proxy is the client. A hop that cannot be parsed ends the
//! walk at the last trusted one, which is then taken as the client (it is the furthest hop
//! whose word we can trust).
//!
//! Limits count an IPv6 client by its /64, the block one subscriber usually holds, so a client
//! cannot escape a limit by moving through its own addresses.

use std::{
    net::{IpAddr, Ipv6Addr},
    str::FromStr,
};

use ipnet::IpNet;

/// The proxies whose forwarding headers are believed; empty by default (none are).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl FromStr for TrustedProxies {
    type Err = String;

    /// A comma-separated list of CIDRs or single addresses.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        value
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{item:?} is not a CIDR (10.0.0.0/8) or an address"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

/// The header trusted proxies name the client in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ForwardedHeader {
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=...`.
    Forwarded,
}

impl FromStr for ForwardedHeader {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(Self::XForwardedFor),
            "forwarded" => Ok(Self::Forwarded),
            other => Err(format!(
                "expected x-forwarded-for or forwarded, got {other:?}"
            )),
        }
    }
}

impl ForwardedHeader {
    pub fn name(self) -> &'static str {
        match self {
            Self::XForwardedFor => "x-forwarded-for",
            Self::Forwarded => "forwarded",
        }
    }
}

impl TrustedProxies {
    fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client behind `peer` (the socket's address), given the values of `header` in the
    /// request, in header order.
    pub fn client(&self, peer: IpAddr, header: ForwardedHeader, values: &[&str]) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let hops = values.iter().flat_map(|value| value.split(','));
        let hops: Vec<&str> = match header {
            ForwardedHeader::XForwardedFor => hops.map(str::trim).collect(),
            ForwardedHeader::Forwarded => hops.map(forwarded_for).collect(),
        };
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(address) = parse_hop(hop) else {
                break;
            };
            client = address;
            if !self.trusts(address) {
                break;
            }
        }
        client
    }
}

/// The `for=` of one `Forwarded` element (`for=192.0.2.1;proto=https`), or "" if it has none.
fn forwarded_for(element: &str) -> &str {
    element
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
        .map_or("", |(_, value)| value.trim())
}

/// One hop as written by a proxy: `192.0.2.1`, `192.0.2.1:4711`, `"[2001:db8::1]:4711"`,
/// `2001:db8::1`. Obfuscated or unknown hops (`_hidden`, `unknown`) are `None`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    if let Ok(address) = hop.parse::<IpAddr>() {
        return Some(canonical(address));
    }
    if let Some(rest) = hop.strip_prefix('[') {
        let (address, _) = rest.split_once(']')?;
        return address
            .parse::<Ipv6Addr>()
            .ok()
            .map(|a| canonical(a.into()));
    }
    let (address, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    address.parse::<IpAddr>().ok().map(canonical)
}

/// An IPv4 client seen through an IPv6 socket (`::ffff:192.0.2.1`) is that IPv4 client.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The name a client's address is counted under by limits: the address itself for IPv4, its
/// /64 for IPv6.
pub fn limit_group(address: IpAddr) -> String {
    match canonical(address) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            let network = Ipv6Addr::new(
                segments[0],
                segments[1],
                segments[2],
                segments[3],
                0,
                0,
                0,
                0,
            );
            format!("{network}/64")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XFF: ForwardedHeader = ForwardedHeader::XForwardedFor;
    const FORWARDED: ForwardedHeader = ForwardedHeader::Forwarded;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn proxies(list: &str) -> TrustedProxies {
        list.parse().unwrap()
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("203.0.113.7"), XFF, &["198.51.100.1"]),
            ip("203.0.113.7")
        );
        let some = proxies("10.0.0.0/8");
        assert_eq!(
            some.client(ip("203.0.113.7"), FORWARDED, &["for=198.51.100.1"]),
            ip("203.0.113.7")
        );
        // A dual-stack socket's mapped address is the plain IPv4 one.
        assert_eq!(
            none.client(ip("::ffff:203.0.113.7"), XFF, &[]),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn the_client_is_the_first_untrusted_hop_from_the_right() {
        let trusted = proxies("10.0.0.0/8, 192.168.1.1");
        // A client-written first entry (spoofed) is left of the real client and ignored.
        let header = ["1.2.3.4, 198.51.100.9", "192.168.1.1"];
        assert_eq!(
            trusted.client(ip("10.1.2.3"), XFF, &header),
            ip("198.51.100.9")
        );
        // Forwarded, with ports and brackets.
        let forwarded = [
            r#"for=1.2.3.4, for="[2001:db8:cafe::17]:4711";proto=https"#,
            "for=10.0.0.2",
        ];
        assert_eq!(
            trusted.client(ip("10.0.0.1"), FORWARDED, &forwarded),
            ip("2001:db8:cafe::17")
        );
        // Only trusted hops: the furthest one is the client.
        assert_eq!(
            trusted.client(ip("10.0.0.1"), XFF, &["10.0.0.5"]),
            ip("10.0.0.5")
        );
        // No header at all: the proxy itself.
        assert_eq!(trusted.client(ip("10.0.0.1"), XFF, &[]), ip("10.0.0.1"));
    }

    #[test]
    fn a_hop_that_cannot_be_read_ends_the_walk() {
        let trusted = proxies("10.0.0.0/8");
        assert_eq!(
            trusted.client(ip("10.0.0.1"), XFF, &["198.51.100.9, garbage, 10.0.0.7"]),
            ip("10.0.0.7")
        );
        assert_eq!(
            trusted.client(ip("10.0.0.1"), FORWARDED, &["for=_hidden"]),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn mapped_ipv4_is_ipv4_and_ipv6_counts_by_its_64() {
        assert_eq!(
            proxies("10.0.0.0/8").client(ip("::ffff:10.0.0.1"), XFF, &["198.51.100.9"]),
            ip("198.51.100.9")
        );
        assert_eq!(limit_group(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(
            limit_group(ip("2001:db8:1:2:ffff::9")),
            limit_group(ip("2001:db8:1:2::1"))
        );
        assert_ne!(
            limit_group(ip("2001:db8:1:3::1")),
            limit_group(ip("2001:db8:1:2::1"))
        );
        assert_eq!(limit_group(ip("::ffff:192.0.2.1")), "192.0.2.1");
    }

    #[test]
    fn the_settings_name_what_they_cannot_read() {
        assert_eq!(proxies(""), TrustedProxies::default());
        assert!(proxies("10.0.0.0/8,::1").trusts(ip("::1")));
        let error = "10.0.0.0/8, nonsense"
            .parse::<TrustedProxies>()
            .unwrap_err();
        assert!(error.contains("nonsense"), "{error}");
        assert_eq!("Forwarded".parse(), Ok(FORWARDED));
        assert!("x-real-ip".parse::<ForwardedHeader>().is_err());
    }
}
