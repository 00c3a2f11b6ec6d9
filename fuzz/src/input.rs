//! Structured fuzz inputs: fields taken one after another from the front of
//! the input, zeros once it runs out, so that every byte string is a valid
//! input and a seed is just its fields written in order.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Reads fields from the front of a fuzz input.
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    /// The next byte, or 0.
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    /// The next two bytes, little-endian, or zeros.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// The next `N` bytes, zero-padded.
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for b in &mut out {
            *b = self.u8();
        }
        out
    }

    /// A source address from 6 bytes (IPv4 address, port); `v6` maps the
    /// IPv4 address into 2001:db8::/96, so sources of both families are
    /// reached with the same seeds.
    pub fn source(&mut self, v6: bool) -> SocketAddr {
        let [a, b, c, d] = self.array::<4>();
        let port = self.u16();
        let ip = if v6 {
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                0,
                0,
                0,
                0,
                u16::from_be_bytes([a, b]),
                u16::from_be_bytes([c, d]),
            ))
        } else {
            IpAddr::V4(Ipv4Addr::new(a, b, c, d))
        };
        SocketAddr::new(ip, port)
    }

    /// The next `n` bytes, or as many as remain.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// Whether bytes remain.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Everything not read yet.
    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_then_zeros() {
        let mut r = Reader::new(&[1, 2, 3, 10, 0, 0, 1, 0x34, 0x12]);
        assert_eq!(r.u8(), 1);
        assert_eq!(r.u16(), 0x0302);
        assert_eq!(
            r.source(false),
            "10.0.0.1:4660".parse::<SocketAddr>().expect("addr")
        );
        assert!(r.is_empty());
        assert_eq!(r.u16(), 0);
        assert_eq!(r.array::<3>(), [0; 3]);
    }
}
