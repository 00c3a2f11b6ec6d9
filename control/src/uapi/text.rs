//! The UAPI's values as text, written straight into a [`SecretBuf`]:
//! keys as lowercase hex, numbers in decimal, addresses, endpoints and
//! prefixes exactly as Rust's `Display` writes them (which is what `wg`
//! reads: RFC 5952 for IPv6). A `get` of 100k peers writes about three
//! million such fields; `core::fmt` (a `write!` per field, its argument
//! machinery and padding checks) was most of the rendering's cost.
//! Each field goes through a small stack buffer and one copy.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use protocol::allowedips::Prefix;

use super::secret::SecretBuf;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `bytes` as lowercase hex, two digits a byte (a key: 64 digits).
pub fn hex(out: &mut SecretBuf, bytes: &[u8]) {
    // A key at a time through the stack (wiped: it may be a private key).
    let mut digits = zeroize::Zeroizing::new([0u8; 64]);
    for chunk in bytes.chunks(32) {
        for (pair, &b) in digits.chunks_exact_mut(2).zip(chunk) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 15)];
        }
        out.extend_from_slice(&digits[..chunk.len() * 2]);
    }
}

/// Appends `n` in decimal.
pub fn decimal(out: &mut SecretBuf, n: u64) {
    // u64::MAX has 20 digits.
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends `n` in lowercase hex without leading zeros (an IPv6 group).
fn hex_group(out: &mut SecretBuf, n: u16) {
    let mut digits = [0u8; 4];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = HEX[usize::from(n & 15)];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends an IPv4 address, dotted decimal.
pub fn ipv4(out: &mut SecretBuf, addr: Ipv4Addr) {
    for (i, octet) in addr.octets().into_iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b".");
        }
        decimal(out, u64::from(octet));
    }
}

/// Appends an IPv6 address as `Ipv6Addr`'s `Display` does: an IPv4-mapped
/// address as `::ffff:a.b.c.d`; otherwise groups in hex without leading
/// zeros, the first longest run of two or more zero groups as `::`
/// (RFC 5952, section 4.2).
pub fn ipv6(out: &mut SecretBuf, addr: Ipv6Addr) {
    if let Some(v4) = addr.to_ipv4_mapped() {
        out.extend_from_slice(b"::ffff:");
        ipv4(out, v4);
        return;
    }
    let groups = addr.segments();
    // The first longest run of zero groups: (start, length).
    let (mut best, mut run) = ((0, 0), (0, 0));
    for (i, &g) in groups.iter().enumerate() {
        if g != 0 {
            run = (i + 1, 0);
            continue;
        }
        run.1 += 1;
        if run.1 > best.1 {
            best = run;
        }
    }
    let groups_of = |out: &mut SecretBuf, part: &[u16]| {
        for (i, &g) in part.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b":");
            }
            hex_group(out, g);
        }
    };
    if best.1 > 1 {
        groups_of(out, &groups[..best.0]);
        out.extend_from_slice(b"::");
        groups_of(out, &groups[best.0 + best.1..]);
    } else {
        groups_of(out, &groups);
    }
}

/// Appends an IP address.
pub fn ip(out: &mut SecretBuf, addr: IpAddr) {
    match addr {
        IpAddr::V4(a) => ipv4(out, a),
        IpAddr::V6(a) => ipv6(out, a),
    }
}

/// Appends an endpoint: `a.b.c.d:port`, or `[v6]:port` (`[v6%scope]:port`
/// with a scope), as `SocketAddr`'s `Display` does.
pub fn socket_addr(out: &mut SecretBuf, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(a) => ipv4(out, *a.ip()),
        SocketAddr::V6(a) => {
            out.extend_from_slice(b"[");
            ipv6(out, *a.ip());
            if a.scope_id() != 0 {
                out.extend_from_slice(b"%");
                decimal(out, u64::from(a.scope_id()));
            }
            out.extend_from_slice(b"]");
        }
    }
    out.extend_from_slice(b":");
    decimal(out, u64::from(addr.port()));
}

/// Appends a prefix, `address/length`.
pub fn prefix(out: &mut SecretBuf, p: &Prefix) {
    ip(out, p.addr());
    out.extend_from_slice(b"/");
    decimal(out, u64::from(p.prefix_len()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{SocketAddrV4, SocketAddrV6};

    /// A deterministic xorshift64* stream of test values.
    struct Values(u64);

    impl Values {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    fn text(write: impl FnOnce(&mut SecretBuf)) -> String {
        let mut out = SecretBuf::default();
        write(&mut out);
        out.into_string().to_string()
    }

    /// IPv6 addresses that exercise every branch of the compression: no
    /// zero group, single zero groups (never `::`), runs at the start, in
    /// the middle and at the end, two runs of equal and unequal length,
    /// all zeros, the loopback, IPv4-mapped and IPv4-compatible.
    fn v6_cases(values: &mut Values) -> Vec<Ipv6Addr> {
        let mut cases: Vec<Ipv6Addr> = [
            "::",
            "::1",
            "1::",
            "2001:db8::1",
            "2001:db8:0:1:0:0:0:1",
            "2001:0:0:1:0:0:1:1",
            "2001:0:1:0:1:0:1:0",
            "0:1:0:1:0:1:0:1",
            "fe80::1:0:0:0",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:192.0.2.1",
            "::192.0.2.1",
            "::ffff:0:0",
            "1:2:3:4:5:6:7:8",
            "0:0:1::",
        ]
        .iter()
        .map(|s| s.parse().expect("v6"))
        .collect();
        for _ in 0..20_000 {
            // Groups drawn so that zeros and zero runs are common.
            let r = values.next();
            let groups: [u16; 8] = std::array::from_fn(|i| {
                if (r >> (i * 2)) & 3 == 0 {
                    (values.next() >> 48) as u16
                } else if (r >> (16 + i)) & 1 == 0 {
                    0
                } else {
                    (values.next() & 0xff) as u16
                }
            });
            cases.push(Ipv6Addr::from(groups));
        }
        cases
    }

    /// Each writer gives exactly what `Display` / `{:02x}` gives, over edge
    /// cases and many drawn values (the independent oracle: core::fmt).
    #[test]
    fn every_field_is_written_as_display_writes_it() {
        let mut values = Values(0x9e37_79b9_7f4a_7c15);
        let mut numbers = vec![0, 1, 9, 10, 99, 100, 65_535, u64::from(u32::MAX), u64::MAX];
        numbers.extend((0..10_000).map(|_| values.next() >> (values.next() % 64)));
        for n in numbers {
            assert_eq!(text(|o| decimal(o, n)), n.to_string());
        }
        let bytes: Vec<u8> = (0..=255).collect();
        let expected: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(text(|o| hex(o, &bytes)), expected);
        assert_eq!(text(|o| hex(o, &[])), "");
        for _ in 0..10_000 {
            let v4 = Ipv4Addr::from(values.next() as u32);
            let port = values.next() as u16;
            assert_eq!(text(|o| ipv4(o, v4)), v4.to_string());
            let sa = SocketAddr::V4(SocketAddrV4::new(v4, port));
            assert_eq!(text(|o| socket_addr(o, sa)), sa.to_string());
            let p = Prefix::new(v4.into(), (values.next() % 33) as u8).expect("v4 prefix");
            assert_eq!(text(|o| prefix(o, &p)), p.to_string());
        }
        for v6 in v6_cases(&mut values) {
            assert_eq!(text(|o| ipv6(o, v6)), v6.to_string(), "{:?}", v6.segments());
            let scope = if values.next().is_multiple_of(2) {
                0
            } else {
                values.next() as u32
            };
            let sa = SocketAddr::V6(SocketAddrV6::new(v6, values.next() as u16, 0, scope));
            assert_eq!(text(|o| socket_addr(o, sa)), sa.to_string());
            let p = Prefix::new(v6.into(), (values.next() % 129) as u8).expect("v6 prefix");
            assert_eq!(text(|o| prefix(o, &p)), p.to_string());
        }
    }
}
