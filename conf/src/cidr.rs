//! IP prefixes: `ADDRESS/LEN`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP address with a prefix length, e.g. `10.0.0.1/24` or `fd00::/64`.
///
/// As a port address the host bits are meaningful (the address and its
/// subnet); as an allowed-IPs entry they must be zero ([`Cidr::is_canonical`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length: 0..=32 for IPv4, 0..=128 for IPv6.
    pub prefix_len: u8,
}

/// Why a prefix did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrParseError {
    /// No `/LEN`.
    #[error("missing /prefix length")]
    MissingLength,
    /// The address part is not an IP address.
    #[error("bad address")]
    BadAddress,
    /// The length is not a number or too long for the family.
    #[error("bad prefix length (0..=32 for IPv4, 0..=128 for IPv6)")]
    BadLength,
}

impl Cidr {
    /// A prefix, if `prefix_len` fits the address family.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Option<Self> {
        (prefix_len <= max_len(addr)).then_some(Cidr { addr, prefix_len })
    }

    /// Whether `ip` lies inside this prefix (always false across families).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask32(self.prefix_len);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask128(self.prefix_len);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    /// Whether the host bits (those past the prefix) are all zero.
    pub fn is_canonical(&self) -> bool {
        self.canonical() == *self
    }

    /// The same prefix with the host bits cleared.
    pub fn canonical(&self) -> Cidr {
        let addr = match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(self.prefix_len))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(self.prefix_len))),
        };
        Cidr {
            addr,
            prefix_len: self.prefix_len,
        }
    }
}

fn max_len(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn mask32(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0)
}

fn mask128(len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = CidrParseError;

    fn from_str(s: &str) -> Result<Self, CidrParseError> {
        let (addr, len) = s.split_once('/').ok_or(CidrParseError::MissingLength)?;
        let addr: IpAddr = addr.parse().map_err(|_| CidrParseError::BadAddress)?;
        if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CidrParseError::BadLength);
        }
        let len: u8 = len.parse().map_err(|_| CidrParseError::BadLength)?;
        Cidr::new(addr, len).ok_or(CidrParseError::BadLength)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().expect("test prefix")
    }

    #[test]
    fn parse_and_display() {
        assert_eq!(c("10.0.0.1/24").to_string(), "10.0.0.1/24");
        assert_eq!(c("fd00::/64").to_string(), "fd00::/64");
        assert_eq!(
            "10.0.0.1".parse::<Cidr>(),
            Err(CidrParseError::MissingLength)
        );
        assert_eq!(
            "10.0.0.1/33".parse::<Cidr>(),
            Err(CidrParseError::BadLength)
        );
        assert_eq!("::/129".parse::<Cidr>(), Err(CidrParseError::BadLength));
        assert_eq!("::/+1".parse::<Cidr>(), Err(CidrParseError::BadLength));
        assert_eq!("x/1".parse::<Cidr>(), Err(CidrParseError::BadAddress));
    }

    #[test]
    fn canonical_and_contains() {
        assert!(!c("10.0.0.1/24").is_canonical());
        assert_eq!(c("10.0.0.1/24").canonical(), c("10.0.0.0/24"));
        assert_eq!(c("10.0.0.1/0").canonical(), c("0.0.0.0/0"));
        assert!(c("10.0.0.1/32").is_canonical());
        assert_eq!(c("fd00::1/64").canonical(), c("fd00::/64"));
        assert!(c("::/0").contains("2001:db8::1".parse().expect("ip")));
        assert!(c("192.0.2.1/24").contains("192.0.2.254".parse().expect("ip")));
        assert!(!c("192.0.2.1/24").contains("192.0.3.1".parse().expect("ip")));
        assert!(!c("0.0.0.0/0").contains("::1".parse().expect("ip")));
    }
}
