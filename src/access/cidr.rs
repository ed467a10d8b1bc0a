//! Address ranges for `--allow`: [`Cidr`] (`10.0.0.0/8`, `fd00::/8`, `192.168.1.10`) and the
//! default set, [`PRIVATE`]: loopback, the private ranges (RFC 1918, RFC 4193 ULA),
//! link-local and CGNAT. IPv4-mapped IPv6 peers (`::ffff:a.b.c.d`, what a `[::]` socket
//! reports for an IPv4 client) are matched as the IPv4 address they carry, and an
//! IPv4-mapped range (`::ffff:10.0.0.0/104`) is the IPv4 range it maps (`10.0.0.0/8`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address range: a network address and a prefix length; the bits past the prefix are
/// zero (`10.1.2.3/8` is refused: it is almost always a typo for `/32` or `10.0.0.0/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

/// Bits of `::ffff:0:0/96`, the prefix of IPv4-mapped IPv6 addresses (RFC 4291 §2.5.5.2).
const IPV4_MAPPED_PREFIX: u8 = 96;

/// What `--allow private` means, and the default: who is on the same site.
pub const PRIVATE: &[&str] = &[
    "127.0.0.0/8",    // IPv4 loopback
    "::1/128",        // IPv6 loopback
    "10.0.0.0/8",     // RFC 1918
    "172.16.0.0/12",  // RFC 1918
    "192.168.0.0/16", // RFC 1918
    "fc00::/7",       // RFC 4193 unique local addresses
    "169.254.0.0/16", // IPv4 link-local
    "fe80::/10",      // IPv6 link-local
    "100.64.0.0/10",  // RFC 6598 carrier-grade NAT (also Tailscale's addresses)
];

impl Cidr {
    /// Parses `ADDR/PREFIX` or a bare address (a single host).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let t = s.trim();
        let bad = || {
            format!("{s:?}: expected an address range such as 192.168.0.0/16, fd00::/8 or 10.0.0.5")
        };
        let (addr, prefix) = match t.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (t, None),
        };
        let net: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.len() <= 3 => {
                let n: u8 = p.parse().map_err(|_| bad())?;
                if n > max {
                    return Err(format!("{s:?}: the prefix length is at most {max}"));
                }
                n
            }
            Some(_) => return Err(bad()),
        };
        // A peer's IPv4-mapped address is compared as IPv4 (`contains`), so such a range is
        // the IPv4 range it maps — or, shorter than the mapped prefix, none we can match.
        let (net, prefix) = match net {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) if prefix >= IPV4_MAPPED_PREFIX => (IpAddr::V4(v4), prefix - IPV4_MAPPED_PREFIX),
                Some(_) => {
                    return Err(format!(
                        "{s:?}: an IPv4-mapped range needs a prefix of at least /{IPV4_MAPPED_PREFIX}; write the IPv4 range instead"
                    ))
                }
                None => (net, prefix),
            },
            IpAddr::V4(_) => (net, prefix),
        };
        let c = Cidr { net, prefix };
        if c.masked(net) != net {
            return Err(format!(
                "{s:?}: bits set past the /{prefix} prefix; did you mean {}/{prefix}, or {addr}/{max} for one address?",
                c.masked(net)
            ));
        }
        Ok(c)
    }

    /// Whether `ip` is in the range (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.net.is_ipv4() && self.masked(ip) == self.net
    }

    /// `ip` with the bits past the prefix cleared (same family as `ip`).
    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// The [`PRIVATE`] ranges.
pub fn private() -> Vec<Cidr> {
    PRIVATE
        .iter()
        .map(|s| Cidr::parse(s).expect("valid built-in range"))
        .collect()
}

/// Parses one `--allow` value: ranges separated by commas or blanks; the word `private`
/// stands for [`PRIVATE`], `any` for every address.
pub fn parse_list(s: &str) -> Result<Vec<Cidr>, String> {
    let mut out = Vec::new();
    for word in s.split([',', ' ', '\t']).filter(|w| !w.is_empty()) {
        match word {
            "private" => out.extend(private()),
            "any" => out.extend([Cidr::parse("0.0.0.0/0")?, Cidr::parse("::/0")?]),
            w => out.push(Cidr::parse(w)?),
        }
    }
    if out.is_empty() {
        return Err(format!(
            "{s:?}: expected address ranges, `private` or `any`"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn allowed(list: &[Cidr], s: &str) -> bool {
        list.iter().any(|c| c.contains(ip(s)))
    }

    #[test]
    fn the_default_admits_the_site_and_refuses_the_internet() {
        let p = private();
        for inside in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "10.20.30.40",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.10",
            "fd12:3456::1",
            "169.254.10.10",
            "fe80::1",
            "100.64.0.1",
            "100.127.255.254",
            "::ffff:192.168.1.10",
            "::ffff:127.0.0.1",
        ] {
            assert!(allowed(&p, inside), "{inside}");
        }
        for outside in [
            "8.8.8.8",
            "172.32.0.1",
            "192.169.0.1",
            "100.128.0.1",
            "203.0.113.5",
            "2001:db8::1",
            "::ffff:8.8.8.8",
            "0.0.0.0",
        ] {
            assert!(!allowed(&p, outside), "{outside}");
        }
    }

    #[test]
    fn ranges_parse_strictly() {
        let c = Cidr::parse("203.0.113.0/24").unwrap();
        assert!(c.contains(ip("203.0.113.200")) && !c.contains(ip("203.0.114.1")));
        assert_eq!(Cidr::parse("10.0.0.5").unwrap().to_string(), "10.0.0.5/32");
        assert_eq!(
            Cidr::parse("2001:db8::/32").unwrap().to_string(),
            "2001:db8::/32"
        );
        let any = parse_list("any").unwrap();
        assert!(allowed(&any, "8.8.8.8") && allowed(&any, "2001:db8::1"));
        let e = Cidr::parse("10.1.2.3/8").unwrap_err();
        assert!(e.contains("10.0.0.0/8") && e.contains("10.1.2.3/32"), "{e}");
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10/8",
            "x",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "1.2.3.4/0008",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
        let list = parse_list("private, 203.0.113.0/24").unwrap();
        assert!(allowed(&list, "203.0.113.9") && allowed(&list, "10.0.0.1"));
        assert!(parse_list(" , ").is_err());
    }
}
