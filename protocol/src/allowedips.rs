//! Allowed IPs: longest-prefix match from an inner address to a peer.
//!
//! WireGuard routes each plaintext packet to the peer whose allowed-IPs
//! contain the destination with the longest prefix, and accepts a decrypted
//! packet only if its source routes back to the peer it came from. This module
//! is that table, for IPv4 and IPv6, mapping prefixes to any `Copy` value (a
//! peer index in practice).
//!
//! # Structure
//!
//! Each address family (address held as one integer: `u32` for IPv4, `u128`
//! for IPv6) keeps two structures, updated together, and lookups use the one
//! that is faster for the table at hand.
//!
//! **Hash index by prefix length.** Every (masked address, length) is in one
//! open-addressing hash table (linear probing, at most half full), and the
//! family keeps the list of distinct prefix lengths present, longest first. A
//! lookup masks the address to each length in turn and probes; the first hit
//! is the longest match. A VPN concentrator's allowed-IPs use few distinct
//! lengths (host routes /32 and /128 for clients, a few subnet lengths for
//! sites, perhaps a default route), so a lookup is one to a few independent
//! probes of about one cache miss each, whatever the number of prefixes.
//! With 100k prefixes on the development VM: about 20 ns (IPv4) and 30 ns
//! (IPv6) per lookup, against 100 to 900 ns for the trie walk.
//!
//! **Path-compressed binary trie** (a PATRICIA trie, the shape of the Linux
//! WireGuard `allowedips.c`), in one flat `Vec` of fixed-size nodes linked by
//! `u32` indices. A node holds its masked key, its length, an optional value
//! and two child indices; valueless nodes exist only where two subtrees
//! branch, so there are fewer than two nodes per prefix and a walk visits at
//! most one node per branching point (about 17 for 100k prefixes). Lookups
//! use it when more than [`MAX_HASH_PROBES`] distinct lengths are present,
//! which bounds the worst case; the walk is bound by the latency of its
//! dependent loads, so the burst functions (`lookup_v4_burst`,
//! `lookup_v6_burst`) advance up to [`BURST_LANES`] walks in lockstep to
//! overlap them (about twice as fast per address). The trie also serves
//! iteration and removal by peer.
//!
//! Both read `&self` only, take no lock and allocate nothing, so any number
//! of lcores can share one table. Memory is proportional to the number of
//! prefixes: with a `u32` value, under 2 trie nodes (24 bytes IPv4, 48 IPv6)
//! and 2 to 4 index slots (16 bytes IPv4, 32 IPv6) per prefix, so at most
//! about 11 MiB (IPv4) or 22 MiB (IPv6) for 100k prefixes, against 64 MiB and
//! more for a DIR-24-8 IPv4 table or the expansion cost of multibit stride
//! tries for long IPv6 prefixes.
//!
//! # Updates
//!
//! Updates take `&mut self`. The intended use is snapshot publication: the
//! control thread clones the current table (a few `Vec` copies per family),
//! applies its changes, and publishes the new table (for example behind an
//! `Arc` swapped between bursts); readers never see a table being modified.
//! Removed trie nodes go on a free list and are reused by later inserts.

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Index meaning "no child".
const NIL: u32 = u32::MAX;

/// How many lookups the burst functions walk in lockstep.
pub const BURST_LANES: usize = 16;

/// Index of the root node of every trie. The root has prefix length 0, always
/// exists and is never freed; the default route lives in it.
const ROOT: u32 = 0;

/// A prefix length that does not fit the address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixError {
    /// An IPv4 prefix longer than 32 bits; carries the rejected length.
    V4TooLong(u8),
    /// An IPv6 prefix longer than 128 bits; carries the rejected length.
    V6TooLong(u8),
}

impl fmt::Display for PrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrefixError::V4TooLong(len) => write!(f, "IPv4 prefix length {len} is over 32"),
            PrefixError::V6TooLong(len) => write!(f, "IPv6 prefix length {len} is over 128"),
        }
    }
}

impl std::error::Error for PrefixError {}

/// A canonical IP prefix: an address with every bit past the prefix length
/// cleared, and a length valid for its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    /// Builds a prefix, clearing the host bits of `addr` (so `10.1.2.3/8`
    /// becomes `10.0.0.0/8`). Fails if `len` is over 32 (IPv4) or 128 (IPv6).
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, PrefixError> {
        match addr {
            IpAddr::V4(a) => Self::v4(a, len),
            IpAddr::V6(a) => Self::v6(a, len),
        }
    }

    /// Builds an IPv4 prefix, clearing the host bits. Fails if `len > 32`.
    pub fn v4(addr: Ipv4Addr, len: u8) -> Result<Self, PrefixError> {
        if u32::from(len) > u32::BITS {
            return Err(PrefixError::V4TooLong(len));
        }
        let key = u32::from(addr) & u32::mask(len);
        Ok(Prefix {
            addr: IpAddr::V4(key.into()),
            len,
        })
    }

    /// Builds an IPv6 prefix, clearing the host bits. Fails if `len > 128`.
    pub fn v6(addr: Ipv6Addr, len: u8) -> Result<Self, PrefixError> {
        if u32::from(len) > u128::BITS {
            return Err(PrefixError::V6TooLong(len));
        }
        let key = u128::from(addr) & u128::mask(len);
        Ok(Prefix {
            addr: IpAddr::V6(key.into()),
            len,
        })
    }

    /// The network address (host bits cleared).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether `addr` lies inside this prefix (always false across families).
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.addr, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                (u32::from(a) & u32::mask(self.len)) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                (u128::from(a) & u128::mask(self.len)) == u128::from(net)
            }
            _ => false,
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Text that is not `address/length` (host bits are allowed, and cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixParseError {
    /// No `/length`, an address that does not parse, or a length that is
    /// not a number.
    Syntax,
    /// A length too long for the family.
    Length(PrefixError),
}

impl fmt::Display for PrefixParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrefixParseError::Syntax => f.write_str("not an address/length prefix"),
            PrefixParseError::Length(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for PrefixParseError {}

impl core::str::FromStr for Prefix {
    type Err = PrefixParseError;

    /// `10.1.2.3/8` (as `wg` accepts it) is `10.0.0.0/8`.
    fn from_str(s: &str) -> Result<Self, PrefixParseError> {
        let (addr, len) = s.split_once('/').ok_or(PrefixParseError::Syntax)?;
        let addr: IpAddr = addr.parse().map_err(|_| PrefixParseError::Syntax)?;
        let len: u8 = len.parse().map_err(|_| PrefixParseError::Syntax)?;
        Prefix::new(addr, len).map_err(PrefixParseError::Length)
    }
}

/// The integer holding an address of one family, most significant bit first.
trait Key: Copy + Eq + fmt::Debug {
    /// Width of the address in bits.
    const BITS: u32;
    /// All-zero key.
    const ZERO: Self;
    /// A mask with the top `len` bits set (`len <= BITS`).
    fn mask(len: u8) -> Self;
    /// Bit `i` counted from the most significant (`i < BITS`), as 0 or 1.
    fn bit(self, i: u8) -> usize;
    /// Whether `self` and `other` agree on the top `len` bits.
    fn matches(self, other: Self, len: u8) -> bool;
    /// Number of leading bits on which `self` and `other` agree.
    fn common(self, other: Self) -> u32;
    /// `self` with only the top `len` bits kept.
    fn truncate(self, len: u8) -> Self;
    /// A well-mixed 64-bit hash of the prefix (`self`, `len`).
    fn hash(self, len: u8) -> u64;
}

/// The splitmix64 finaliser: every input bit affects every output bit.
#[inline]
fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

macro_rules! impl_key {
    ($t:ty, |$k:ident| $to_u64:expr) => {
        impl Key for $t {
            const BITS: u32 = <$t>::BITS;
            const ZERO: Self = 0;

            #[inline]
            fn mask(len: u8) -> Self {
                // A shift by the full width (len == 0) yields None: empty mask.
                <$t>::MAX
                    .checked_shl(<$t>::BITS - u32::from(len))
                    .unwrap_or(0)
            }

            #[inline]
            fn bit(self, i: u8) -> usize {
                ((self >> (<$t>::BITS - 1 - u32::from(i))) & 1) as usize
            }

            #[inline]
            fn matches(self, other: Self, len: u8) -> bool {
                (self ^ other).leading_zeros() >= u32::from(len)
            }

            #[inline]
            fn common(self, other: Self) -> u32 {
                (self ^ other).leading_zeros()
            }

            #[inline]
            fn truncate(self, len: u8) -> Self {
                self & Self::mask(len)
            }

            #[inline]
            fn hash(self, len: u8) -> u64 {
                let $k = self;
                mix64($to_u64 ^ (u64::from(len) << 56))
            }
        }
    };
}

impl_key!(u32, |k| u64::from(k));
// Both halves, one rotated so that equal halves do not cancel.
impl_key!(u128, |k| (k as u64) ^ ((k >> 64) as u64).rotate_left(23));

/// One trie node. Invariant: a node other than the root that holds no value
/// has exactly two children.
#[derive(Debug, Clone)]
struct Node<K, T> {
    key: K,
    len: u8,
    value: Option<T>,
    child: [u32; 2],
}

impl<K: Key, T> Node<K, T> {
    fn new(key: K, len: u8, value: Option<T>) -> Self {
        Node {
            key,
            len,
            value,
            child: [NIL, NIL],
        }
    }
}

/// A path-compressed binary trie over one address family, in a flat `Vec`.
#[derive(Debug, Clone)]
struct Trie<K, T> {
    nodes: Vec<Node<K, T>>,
    free: Vec<u32>,
    count: usize,
}

impl<K: Key, T: Copy + PartialEq> Trie<K, T> {
    fn new() -> Self {
        Trie {
            nodes: vec![Node::new(K::ZERO, 0, None)],
            free: Vec::new(),
            count: 0,
        }
    }

    fn node(&self, i: u32) -> &Node<K, T> {
        &self.nodes[i as usize]
    }

    fn node_mut(&mut self, i: u32) -> &mut Node<K, T> {
        &mut self.nodes[i as usize]
    }

    fn alloc(&mut self, node: Node<K, T>) -> u32 {
        match self.free.pop() {
            Some(i) => {
                *self.node_mut(i) = node;
                i
            }
            None => {
                let i = u32::try_from(self.nodes.len())
                    .ok()
                    .filter(|&i| i != NIL)
                    .expect("allowed-IPs trie over 2^32 - 1 nodes");
                self.nodes.push(node);
                i
            }
        }
    }

    fn release(&mut self, i: u32) {
        *self.node_mut(i) = Node::new(K::ZERO, 0, None);
        self.free.push(i);
    }

    /// Longest-prefix match. Hot path: no allocation, `&self` only.
    #[inline]
    fn lookup(&self, key: K) -> Option<T> {
        let nodes = self.nodes.as_slice();
        let mut cur = nodes.first()?;
        let mut best = cur.value;
        while u32::from(cur.len) < K::BITS {
            let next = cur.child[key.bit(cur.len)];
            let Some(n) = nodes.get(next as usize) else {
                break;
            };
            if !key.matches(n.key, n.len) {
                break;
            }
            if n.value.is_some() {
                best = n.value;
            }
            cur = n;
        }
        best
    }

    /// Longest-prefix match of many addresses: `out[i]` gets the owner of
    /// `to_key(addrs[i])`. Up to [`BURST_LANES`] walks advance in lockstep,
    /// one trie level per pass, so that their independent memory loads
    /// overlap instead of each waiting for the previous walk's cache misses.
    #[inline]
    fn lookup_many<A: Copy>(&self, addrs: &[A], to_key: impl Fn(A) -> K, out: &mut [Option<T>]) {
        let nodes = self.nodes.as_slice();
        let root_value = nodes.first().and_then(|n| n.value);
        let n = addrs.len().min(out.len());
        let (addrs, out) = (&addrs[..n], &mut out[..n]);
        for (addrs, out) in addrs.chunks(BURST_LANES).zip(out.chunks_mut(BURST_LANES)) {
            let mut keys = [K::ZERO; BURST_LANES];
            for (k, &a) in keys.iter_mut().zip(addrs) {
                *k = to_key(a);
            }
            // Node each walk stands on; NIL once it has ended.
            let mut cur = [ROOT; BURST_LANES];
            out.fill(root_value);
            let mut active = true;
            while active {
                active = false;
                for ((key, best), at) in keys.iter().zip(out.iter_mut()).zip(cur.iter_mut()) {
                    let Some(n) = nodes.get(*at as usize) else {
                        continue;
                    };
                    *at = NIL;
                    if u32::from(n.len) >= K::BITS {
                        continue;
                    }
                    let next = n.child[key.bit(n.len)];
                    if let Some(m) = nodes.get(next as usize) {
                        if key.matches(m.key, m.len) {
                            if m.value.is_some() {
                                *best = m.value;
                            }
                            *at = next;
                            active = true;
                        }
                    }
                }
            }
        }
    }

    /// Inserts or replaces; returns the previous owner of the exact prefix.
    /// `key` is already masked to `len`.
    fn insert(&mut self, key: K, len: u8, value: T) -> Option<T> {
        let mut cur = ROOT;
        loop {
            // Invariant: node `cur` is a prefix of (key, len), cur.len <= len.
            let (cur_len, slot_bit, child) = {
                let n = self.node(cur);
                if n.len == len {
                    break;
                }
                let b = key.bit(n.len);
                (n.len, b, n.child[b])
            };
            debug_assert!(cur_len < len);
            if child == NIL {
                let leaf = self.alloc(Node::new(key, len, Some(value)));
                self.node_mut(cur).child[slot_bit] = leaf;
                self.count += 1;
                return None;
            }
            let (c_key, c_len) = {
                let c = self.node(child);
                (c.key, c.len)
            };
            // Both agree on bit `cur_len`, so `common > cur_len`.
            let common = key.common(c_key).min(u32::from(len)).min(u32::from(c_len));
            // `common` is at most `len`, which is a u8.
            let common = common as u8;
            if common == c_len {
                cur = child;
                continue;
            }
            // The child diverges from the new prefix, or extends past it.
            if common == len {
                let mut new = Node::new(key, len, Some(value));
                new.child[c_key.bit(len)] = child;
                let new = self.alloc(new);
                self.node_mut(cur).child[slot_bit] = new;
            } else {
                let leaf = self.alloc(Node::new(key, len, Some(value)));
                let mut split = Node::new(key.truncate(common), common, None);
                split.child[key.bit(common)] = leaf;
                split.child[c_key.bit(common)] = child;
                let split = self.alloc(split);
                self.node_mut(cur).child[slot_bit] = split;
            }
            self.count += 1;
            return None;
        }
        let n = self.node_mut(cur);
        let old = n.value.replace(value);
        if old.is_none() {
            self.count += 1;
        }
        old
    }

    /// Removes the exact prefix; returns its owner if it was present.
    /// `key` is already masked to `len`.
    fn remove(&mut self, key: K, len: u8) -> Option<T> {
        // Path from the root; at most one node per bit length plus the root.
        let mut path = [NIL; 130];
        let mut depth = 0;
        let mut cur = ROOT;
        loop {
            path[depth] = cur;
            let n = self.node(cur);
            if n.len == len {
                if n.key != key {
                    return None;
                }
                break;
            }
            if n.len > len || !key.matches(n.key, n.len) {
                return None;
            }
            cur = n.child[key.bit(n.len)];
            if cur == NIL {
                return None;
            }
            depth += 1;
        }
        let old = self.node_mut(cur).value.take()?;
        self.count -= 1;
        // Restore the invariant: drop valueless nodes with fewer than two
        // children, walking up while that cascades (the root stays).
        while depth > 0 {
            let i = path[depth];
            let parent = path[depth - 1];
            let n = self.node(i);
            if n.value.is_some() {
                break;
            }
            let replacement = match n.child {
                [NIL, NIL] => NIL,
                [c, NIL] | [NIL, c] => c,
                _ => break,
            };
            let p = self.node_mut(parent);
            let slot = usize::from(p.child[1] == i);
            p.child[slot] = replacement;
            self.release(i);
            depth -= 1;
        }
        Some(old)
    }

    /// Every stored (key, len, value), in unspecified order.
    fn entries(&self) -> impl Iterator<Item = (K, u8, T)> + '_ {
        self.nodes
            .iter()
            .filter_map(|n| n.value.map(|v| (n.key, n.len, v)))
    }
}

/// One slot of the hash index; empty when `value` is `None`.
#[derive(Debug, Clone)]
struct Slot<K, T> {
    key: K,
    len: u8,
    value: Option<T>,
}

/// Exact-match index of every (masked key, length) in a family: open
/// addressing with linear probing, a power-of-two number of slots at most
/// half full (so every probe sequence reaches an empty slot), and
/// backward-shift deletion (no tombstones).
#[derive(Debug, Clone)]
struct HashIndex<K, T> {
    slots: Vec<Slot<K, T>>,
    count: usize,
}

impl<K: Key, T: Copy + PartialEq> HashIndex<K, T> {
    const MIN_SLOTS: usize = 16;

    fn new() -> Self {
        HashIndex {
            slots: Self::empty_slots(Self::MIN_SLOTS),
            count: 0,
        }
    }

    fn empty_slots(n: usize) -> Vec<Slot<K, T>> {
        (0..n)
            .map(|_| Slot {
                key: K::ZERO,
                len: 0,
                value: None,
            })
            .collect()
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    #[inline]
    fn home(&self, key: K, len: u8) -> usize {
        // Truncation to usize keeps the low bits, which the mask selects.
        key.hash(len) as usize & self.mask()
    }

    /// The slot holding (key, len), if any.
    #[inline]
    fn find(&self, key: K, len: u8) -> Option<usize> {
        let mask = self.mask();
        let mut i = self.home(key, len);
        loop {
            let s = self.slots.get(i)?;
            s.value?;
            if s.key == key && s.len == len {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    #[inline]
    fn get(&self, key: K, len: u8) -> Option<T> {
        self.find(key, len)
            .and_then(|i| self.slots.get(i))
            .and_then(|s| s.value)
    }

    /// Inserts or replaces (key, len).
    fn insert(&mut self, key: K, len: u8, value: T) {
        if (self.count + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.mask();
        let mut i = self.home(key, len);
        while let Some(s) = self.slots.get_mut(i) {
            if s.value.is_none() {
                *s = Slot {
                    key,
                    len,
                    value: Some(value),
                };
                self.count += 1;
                return;
            }
            if s.key == key && s.len == len {
                s.value = Some(value);
                return;
            }
            i = (i + 1) & mask;
        }
    }

    /// Doubles the slot count and reinserts everything.
    fn grow(&mut self) {
        let doubled = Self::empty_slots(self.slots.len() * 2);
        let old = std::mem::replace(&mut self.slots, doubled);
        self.count = 0;
        for s in old {
            if let Some(v) = s.value {
                self.insert(s.key, s.len, v);
            }
        }
    }

    /// Removes (key, len) if present, shifting later members of its probe
    /// run back so that no lookup stops early.
    fn remove(&mut self, key: K, len: u8) {
        let Some(mut hole) = self.find(key, len) else {
            return;
        };
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let Some(s) = self.slots.get(j) else {
                break;
            };
            if s.value.is_none() {
                break;
            }
            // The entry at j may move to the hole unless its home lies
            // cyclically within (hole, j].
            let home = self.home(s.key, s.len);
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.slots.swap(hole, j);
                hole = j;
            }
        }
        if let Some(s) = self.slots.get_mut(hole) {
            s.value = None;
        }
        self.count -= 1;
    }
}

/// Most distinct prefix lengths a family may hold for lookups to use the
/// hash index (so at most this many probes); with more, lookups walk the
/// trie.
pub const MAX_HASH_PROBES: usize = 8;

/// One address family: the trie (longest match in a bounded number of
/// steps, ordered iteration of the structure) and the hash index (longest
/// match by probing each present prefix length, longest first).
#[derive(Debug, Clone)]
struct Family<K, T> {
    trie: Trie<K, T>,
    index: HashIndex<K, T>,
    /// The distinct prefix lengths present, longest first.
    lens: Vec<u8>,
    /// How many prefixes of each length are present.
    per_len: Vec<u32>,
}

impl<K: Key, T: Copy + PartialEq> Family<K, T> {
    fn new() -> Self {
        Family {
            trie: Trie::new(),
            index: HashIndex::new(),
            lens: Vec::new(),
            per_len: vec![0; K::BITS as usize + 1],
        }
    }

    fn insert(&mut self, key: K, len: u8, value: T) -> Option<T> {
        let old = self.trie.insert(key, len, value);
        self.index.insert(key, len, value);
        if old.is_none() {
            if let Some(n) = self.per_len.get_mut(usize::from(len)) {
                *n += 1;
                if *n == 1 {
                    let at = self.lens.partition_point(|&l| l > len);
                    self.lens.insert(at, len);
                }
            }
        }
        old
    }

    fn remove(&mut self, key: K, len: u8) -> Option<T> {
        let old = self.trie.remove(key, len)?;
        self.index.remove(key, len);
        if let Some(n) = self.per_len.get_mut(usize::from(len)) {
            *n -= 1;
            if *n == 0 {
                self.lens.retain(|&l| l != len);
            }
        }
        Some(old)
    }

    /// The value stored for exactly this prefix.
    fn get(&self, key: K, len: u8) -> Option<T> {
        self.index.get(key, len)
    }

    /// Whether lookups probe the hash index rather than walk the trie.
    #[inline]
    fn uses_index(&self) -> bool {
        self.lens.len() <= MAX_HASH_PROBES
    }

    /// Longest-prefix match. Hot path: no allocation, `&self` only.
    #[inline]
    fn lookup(&self, key: K) -> Option<T> {
        if self.uses_index() {
            self.lens
                .iter()
                .find_map(|&len| self.index.get(key.truncate(len), len))
        } else {
            self.trie.lookup(key)
        }
    }

    /// Longest-prefix match of many addresses; see `Trie::lookup_many`.
    #[inline]
    fn lookup_many<A: Copy>(&self, addrs: &[A], to_key: impl Fn(A) -> K, out: &mut [Option<T>]) {
        if self.uses_index() {
            // Probes of different addresses are independent loads already.
            for (o, &a) in out.iter_mut().zip(addrs) {
                *o = self.lookup(to_key(a));
            }
        } else {
            self.trie.lookup_many(addrs, to_key, out);
        }
    }
}

/// The allowed-IPs table: IPv4 and IPv6 prefixes, each owned by one `T`.
///
/// Lookups take `&self`, never allocate and never lock; updates take
/// `&mut self` (see the module documentation for publishing snapshots).
#[derive(Debug, Clone)]
pub struct AllowedIps<T> {
    v4: Family<u32, T>,
    v6: Family<u128, T>,
}

impl<T: Copy + PartialEq> Default for AllowedIps<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy + PartialEq> AllowedIps<T> {
    /// An empty table.
    pub fn new() -> Self {
        AllowedIps {
            v4: Family::new(),
            v6: Family::new(),
        }
    }

    /// Number of prefixes stored, both families together.
    pub fn len(&self) -> usize {
        self.v4.trie.count + self.v6.trie.count
    }

    /// Whether the table holds no prefix.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Maps `prefix` to `peer`. If the exact prefix was present, its owner is
    /// replaced and the previous owner returned.
    ///
    /// # Panics
    ///
    /// If one address family would need more than 2^32 - 1 trie nodes (about
    /// two billion prefixes, far beyond memory).
    pub fn insert(&mut self, prefix: Prefix, peer: T) -> Option<T> {
        match prefix.addr {
            IpAddr::V4(a) => self.v4.insert(a.into(), prefix.len, peer),
            IpAddr::V6(a) => self.v6.insert(a.into(), prefix.len, peer),
        }
    }

    /// Removes the exact prefix (a longer or shorter one is untouched) and
    /// returns its owner if it was present.
    pub fn remove(&mut self, prefix: Prefix) -> Option<T> {
        match prefix.addr {
            IpAddr::V4(a) => self.v4.remove(a.into(), prefix.len),
            IpAddr::V6(a) => self.v6.remove(a.into(), prefix.len),
        }
    }

    /// The owner of exactly `prefix`, without longest-prefix matching.
    pub fn get(&self, prefix: Prefix) -> Option<T> {
        match prefix.addr {
            IpAddr::V4(a) => self.v4.get(a.into(), prefix.len),
            IpAddr::V6(a) => self.v6.get(a.into(), prefix.len),
        }
    }

    /// Every prefix with its owner: IPv4 first, then IPv6, otherwise in
    /// unspecified order.
    pub fn iter(&self) -> impl Iterator<Item = (Prefix, T)> + '_ {
        let v4 = self.v4.trie.entries().map(|(k, len, v)| {
            let prefix = Prefix {
                addr: IpAddr::V4(k.into()),
                len,
            };
            (prefix, v)
        });
        let v6 = self.v6.trie.entries().map(|(k, len, v)| {
            let prefix = Prefix {
                addr: IpAddr::V6(k.into()),
                len,
            };
            (prefix, v)
        });
        v4.chain(v6)
    }

    /// Longest-prefix match of any address.
    #[inline]
    pub fn lookup(&self, addr: IpAddr) -> Option<T> {
        match addr {
            IpAddr::V4(a) => self.lookup_v4(a),
            IpAddr::V6(a) => self.lookup_v6(a),
        }
    }

    /// Longest-prefix match of an IPv4 address.
    #[inline]
    pub fn lookup_v4(&self, addr: Ipv4Addr) -> Option<T> {
        self.v4.lookup(addr.into())
    }

    /// Longest-prefix match of an IPv6 address.
    #[inline]
    pub fn lookup_v6(&self, addr: Ipv6Addr) -> Option<T> {
        self.v6.lookup(addr.into())
    }

    /// Longest-prefix match of an IPv4 address in network byte order, as it
    /// sits in a packet header.
    #[inline]
    pub fn lookup_v4_bytes(&self, addr: [u8; 4]) -> Option<T> {
        self.v4.lookup(u32::from_be_bytes(addr))
    }

    /// Longest-prefix match of an IPv6 address in network byte order, as it
    /// sits in a packet header.
    #[inline]
    pub fn lookup_v6_bytes(&self, addr: [u8; 16]) -> Option<T> {
        self.v6.lookup(u128::from_be_bytes(addr))
    }

    /// Longest-prefix match of a burst of IPv4 addresses in network byte
    /// order: `out[i]` gets the owner of `addrs[i]`, for `i` below the
    /// shorter length of the two. Same answers as [`Self::lookup_v4_bytes`],
    /// faster per address for a burst (walks overlap, see [`BURST_LANES`]).
    pub fn lookup_v4_burst(&self, addrs: &[[u8; 4]], out: &mut [Option<T>]) {
        self.v4.lookup_many(addrs, u32::from_be_bytes, out);
    }

    /// Longest-prefix match of a burst of IPv6 addresses in network byte
    /// order: `out[i]` gets the owner of `addrs[i]`, for `i` below the
    /// shorter length of the two. Same answers as [`Self::lookup_v6_bytes`],
    /// faster per address for a burst (walks overlap, see [`BURST_LANES`]).
    pub fn lookup_v6_burst(&self, addrs: &[[u8; 16]], out: &mut [Option<T>]) {
        self.v6.lookup_many(addrs, u128::from_be_bytes, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        let (a, l) = s.split_once('/').expect("prefix has a slash");
        Prefix::new(a.parse().expect("address"), l.parse().expect("length")).expect("valid")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn empty_table_matches_nothing() {
        let t: AllowedIps<u32> = AllowedIps::new();
        assert!(t.is_empty());
        assert_eq!(t.lookup(ip("10.0.0.1")), None);
        assert_eq!(t.lookup(ip("::1")), None);
        assert_eq!(t.lookup(ip("0.0.0.0")), None);
    }

    #[test]
    fn default_routes_match_everything_in_their_family() {
        let mut t = AllowedIps::new();
        t.insert(p("0.0.0.0/0"), 4);
        assert_eq!(t.lookup(ip("1.2.3.4")), Some(4));
        assert_eq!(t.lookup(ip("255.255.255.255")), Some(4));
        assert_eq!(t.lookup(ip("::")), None);
        t.insert(p("::/0"), 6);
        assert_eq!(t.lookup(ip("2001:db8::1")), Some(6));
        assert_eq!(
            t.lookup(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
            Some(6)
        );
        assert_eq!(t.lookup(ip("0.0.0.0")), Some(4));
        assert_eq!(t.len(), 2);
        assert_eq!(t.remove(p("0.0.0.0/0")), Some(4));
        assert_eq!(t.lookup(ip("1.2.3.4")), None);
        assert_eq!(t.lookup(ip("::1")), Some(6));
    }

    #[test]
    fn host_routes_match_only_their_address() {
        let mut t = AllowedIps::new();
        t.insert(p("192.168.1.7/32"), 1);
        t.insert(p("2001:db8::7/128"), 2);
        assert_eq!(t.lookup(ip("192.168.1.7")), Some(1));
        assert_eq!(t.lookup(ip("192.168.1.6")), None);
        assert_eq!(t.lookup(ip("192.168.1.8")), None);
        assert_eq!(t.lookup(ip("2001:db8::7")), Some(2));
        assert_eq!(t.lookup(ip("2001:db8::6")), None);
        assert_eq!(t.lookup_v4_bytes([192, 168, 1, 7]), Some(1));
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        b[15] = 7;
        assert_eq!(t.lookup_v6_bytes(b), Some(2));
    }

    #[test]
    fn overlapping_prefixes_pick_the_longest() {
        let mut t = AllowedIps::new();
        t.insert(p("10.0.0.0/8"), 1);
        t.insert(p("10.1.0.0/16"), 2);
        t.insert(p("10.1.2.0/24"), 3);
        t.insert(p("10.1.2.128/25"), 4);
        assert_eq!(t.lookup(ip("10.9.9.9")), Some(1));
        assert_eq!(t.lookup(ip("10.1.9.9")), Some(2));
        assert_eq!(t.lookup(ip("10.1.2.3")), Some(3));
        assert_eq!(t.lookup(ip("10.1.2.200")), Some(4));
        assert_eq!(t.lookup(ip("11.1.2.200")), None);
        t.insert(p("2001:db8::/32"), 5);
        t.insert(p("2001:db8:1::/48"), 6);
        assert_eq!(t.lookup(ip("2001:db8:1::9")), Some(6));
        assert_eq!(t.lookup(ip("2001:db8:2::9")), Some(5));
    }

    #[test]
    fn insert_in_any_order_gives_the_same_answers() {
        let mut t = AllowedIps::new();
        t.insert(p("10.1.2.128/25"), 4);
        t.insert(p("10.1.2.0/24"), 3);
        t.insert(p("10.0.0.0/8"), 1);
        t.insert(p("10.1.0.0/16"), 2);
        assert_eq!(t.lookup(ip("10.9.9.9")), Some(1));
        assert_eq!(t.lookup(ip("10.1.9.9")), Some(2));
        assert_eq!(t.lookup(ip("10.1.2.3")), Some(3));
        assert_eq!(t.lookup(ip("10.1.2.200")), Some(4));
    }

    #[test]
    fn insert_replaces_the_owner_of_an_exact_prefix() {
        let mut t = AllowedIps::new();
        assert_eq!(t.insert(p("10.0.0.0/8"), 1), None);
        assert_eq!(t.insert(p("10.0.0.0/8"), 2), Some(1));
        assert_eq!(t.lookup(ip("10.2.3.4")), Some(2));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn host_bits_are_masked_off() {
        let q = Prefix::new(ip("10.1.2.3"), 8).expect("valid");
        assert_eq!(q.addr(), ip("10.0.0.0"));
        assert_eq!(q.prefix_len(), 8);
        assert_eq!(q.to_string(), "10.0.0.0/8");
        let q6 = Prefix::new(ip("2001:db8:ffff::1"), 33).expect("valid");
        assert_eq!(q6.addr(), ip("2001:db8:8000::"));
        let mut t = AllowedIps::new();
        t.insert(q, 1);
        assert_eq!(t.get(p("10.0.0.0/8")), Some(1));
        assert_eq!(t.remove(p("10.255.0.0/8")), Some(1));
        assert!(t.is_empty());
    }

    #[test]
    fn overlong_prefixes_are_rejected() {
        assert_eq!(
            Prefix::new(ip("10.0.0.0"), 33),
            Err(PrefixError::V4TooLong(33))
        );
        assert_eq!(Prefix::new(ip("::"), 129), Err(PrefixError::V6TooLong(129)));
        assert_eq!(Prefix::new(ip("::"), 255), Err(PrefixError::V6TooLong(255)));
        assert!(Prefix::new(ip("10.0.0.1"), 32).is_ok());
        assert!(Prefix::new(ip("::1"), 128).is_ok());
    }

    #[test]
    fn remove_restores_the_shorter_match() {
        let mut t = AllowedIps::new();
        t.insert(p("10.0.0.0/8"), 1);
        t.insert(p("10.1.0.0/16"), 2);
        t.insert(p("10.1.1.1/32"), 3);
        assert_eq!(t.lookup(ip("10.1.1.1")), Some(3));
        assert_eq!(t.remove(p("10.1.1.1/32")), Some(3));
        assert_eq!(t.lookup(ip("10.1.1.1")), Some(2));
        assert_eq!(t.remove(p("10.1.0.0/16")), Some(2));
        assert_eq!(t.lookup(ip("10.1.1.1")), Some(1));
        assert_eq!(t.remove(p("10.1.0.0/16")), None);
        t.insert(p("::/0"), 7);
        t.insert(p("fd00::/8"), 8);
        assert_eq!(t.remove(p("fd00::/8")), Some(8));
        assert_eq!(t.lookup(ip("fd00::1")), Some(7));
    }

    #[test]
    fn remove_of_an_absent_prefix_changes_nothing() {
        let mut t = AllowedIps::new();
        t.insert(p("10.1.0.0/16"), 2);
        t.insert(p("10.2.0.0/16"), 3);
        // The branching node 10.0.0.0/14 exists but holds no value.
        assert_eq!(t.remove(p("10.0.0.0/14")), None);
        assert_eq!(t.remove(p("10.1.0.0/24")), None);
        assert_eq!(t.remove(p("10.0.0.0/8")), None);
        assert_eq!(t.len(), 2);
        assert_eq!(t.lookup(ip("10.1.3.3")), Some(2));
        assert_eq!(t.lookup(ip("10.2.3.3")), Some(3));
    }

    #[test]
    fn burst_lookups_match_single_lookups() {
        let mut t = AllowedIps::new();
        t.insert(p("0.0.0.0/0"), 0);
        t.insert(p("10.0.0.0/8"), 1);
        t.insert(p("10.1.0.0/16"), 2);
        t.insert(p("10.1.2.3/32"), 3);
        t.insert(p("fd00::/8"), 4);
        t.insert(p("fd00::1/128"), 5);
        // More than one chunk of lanes, walks of different depths.
        let v4: Vec<[u8; 4]> = (0..40u8).map(|i| [10, i % 3, 2, i % 5]).collect();
        let mut out = [None; 40];
        t.lookup_v4_burst(&v4, &mut out);
        for (a, o) in v4.iter().zip(out) {
            assert_eq!(o, t.lookup_v4_bytes(*a), "{a:?}");
        }
        assert!(out.contains(&Some(3)) && out.contains(&Some(2)) && out.contains(&Some(1)));
        let v6: Vec<[u8; 16]> = (0..20u8)
            .map(|i| {
                let mut a = [0u8; 16];
                a[0] = if i % 2 == 0 { 0xfd } else { 0xfe };
                a[15] = (i / 2) % 4;
                a
            })
            .collect();
        let mut out6 = [None; 20];
        t.lookup_v6_burst(&v6, &mut out6);
        for (a, o) in v6.iter().zip(out6) {
            assert_eq!(o, t.lookup_v6_bytes(*a), "{a:?}");
        }
        assert!(out6.contains(&Some(5)) && out6.contains(&Some(4)) && out6.contains(&None));
    }

    #[test]
    fn burst_lookup_fills_only_the_shorter_length() {
        let mut t = AllowedIps::new();
        t.insert(p("0.0.0.0/0"), 7);
        let mut out = [Some(1); 4];
        t.lookup_v4_burst(&[[1, 2, 3, 4], [5, 6, 7, 8]], &mut out);
        assert_eq!(out, [Some(7), Some(7), Some(1), Some(1)]);
        let mut short = [None; 1];
        t.lookup_v4_burst(&[[1, 2, 3, 4], [5, 6, 7, 8]], &mut short);
        assert_eq!(short, [Some(7)]);
    }

    #[test]
    fn hash_index_finds_every_member_through_growth_and_removal() {
        let mut index: HashIndex<u32, u32> = HashIndex::new();
        let mut rng = Rng(42);
        let keys: Vec<u32> = (0..2000).map(|_| rng.next() as u32).collect();
        for (i, &k) in keys.iter().enumerate() {
            index.insert(k, 32, i as u32);
            // The same key under another length is another member.
            index.insert(k & 0xffff_ff00, 24, u32::MAX);
        }
        let mut live: Vec<usize> = (0..keys.len()).collect();
        while !live.is_empty() {
            let gone = live.swap_remove(rng.below(live.len() as u64) as usize);
            index.remove(keys[gone], 32);
            assert_eq!(index.get(keys[gone], 32), None);
            if live.len() % 97 == 1 {
                for &i in &live {
                    assert_eq!(index.get(keys[i], 32), Some(i as u32));
                }
            }
        }
        for &k in &keys {
            assert_eq!(index.get(k & 0xffff_ff00, 24), Some(u32::MAX));
        }
        assert!(index.count * 2 <= index.slots.len());
    }

    #[test]
    fn prefix_contains_respects_family_and_mask() {
        let q = p("10.1.0.0/16");
        assert!(q.contains(ip("10.1.255.1")));
        assert!(!q.contains(ip("10.2.0.1")));
        assert!(!q.contains(ip("::a01:0")));
        assert!(p("::/0").contains(ip("2001:db8::1")));
    }

    /// xorshift64*: a small deterministic generator for the randomized tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn u128(&mut self) -> u128 {
            (u128::from(self.next()) << 64) | u128::from(self.next())
        }
    }

    /// The reference: a list of (key, len, value), longest match by scan.
    struct Naive {
        bits: u32,
        entries: Vec<(u128, u8, u32)>,
    }

    impl Naive {
        fn mask(&self, len: u8) -> u128 {
            // Keys are left-aligned in a u128 whatever the family.
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            m & (u128::MAX << (128 - self.bits))
        }

        fn insert(&mut self, key: u128, len: u8, v: u32) -> Option<u32> {
            let key = key & self.mask(len);
            for e in &mut self.entries {
                if e.0 == key && e.1 == len {
                    return Some(std::mem::replace(&mut e.2, v));
                }
            }
            self.entries.push((key, len, v));
            None
        }

        fn remove(&mut self, key: u128, len: u8) -> Option<u32> {
            let key = key & self.mask(len);
            let i = self.entries.iter().position(|e| e.0 == key && e.1 == len)?;
            Some(self.entries.swap_remove(i).2)
        }

        fn get(&self, key: u128, len: u8) -> Option<u32> {
            let key = key & self.mask(len);
            self.entries
                .iter()
                .find(|e| e.0 == key && e.1 == len)
                .map(|e| e.2)
        }

        fn lookup(&self, key: u128) -> Option<u32> {
            self.entries
                .iter()
                .filter(|e| key & self.mask(e.1) == e.0)
                .max_by_key(|e| e.1)
                .map(|e| e.2)
        }
    }

    /// Structural invariants: every live valueless node other than the root
    /// branches in two, so live nodes number at most twice the prefixes + 1;
    /// the hash index and the length list agree with the trie.
    fn check_shape<K: Key, T: Copy + PartialEq + fmt::Debug>(family: &Family<K, T>) {
        let trie = &family.trie;
        assert_eq!(family.index.count, trie.count);
        assert!(family.index.count * 2 <= family.index.slots.len());
        let mut lens: Vec<u8> = trie.entries().map(|(_, l, _)| l).collect();
        lens.sort_unstable_by(|a, b| b.cmp(a));
        lens.dedup();
        assert_eq!(family.lens, lens);
        for (k, l, v) in trie.entries() {
            assert_eq!(family.index.get(k, l), Some(v));
        }
        let free: std::collections::HashSet<u32> = trie.free.iter().copied().collect();
        let mut live = 0;
        for (i, n) in trie.nodes.iter().enumerate() {
            let i = i as u32;
            if free.contains(&i) {
                continue;
            }
            live += 1;
            if i != ROOT && n.value.is_none() {
                assert!(
                    n.child[0] != NIL && n.child[1] != NIL,
                    "node {i} is a dead end"
                );
            }
        }
        assert!(
            live <= 2 * trie.count + 1,
            "{live} nodes for {}",
            trie.count
        );
    }

    fn to_addr(bits: u32, key: u128) -> IpAddr {
        if bits == 32 {
            IpAddr::V4(Ipv4Addr::from((key >> 96) as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(key))
        }
    }

    /// Random prefixes clustered around a few bases so that they overlap;
    /// interleaved inserts, removals, peer removals and lookups, each checked
    /// against the naive table.
    ///
    /// `lens` restricts the prefix lengths (empty: any length), which decides
    /// whether lookups end up using the hash index or the trie.
    fn randomized(bits: u32, seed: u64, lens: &[u8]) {
        let mut rng = Rng(seed);
        let mut t = AllowedIps::new();
        let mut naive = Naive {
            bits,
            entries: Vec::new(),
        };
        let bases: Vec<u128> = (0..16).map(|_| rng.u128()).collect();
        let family = u128::MAX << (128 - bits);
        let random_key = |rng: &mut Rng| -> u128 {
            let base = bases[rng.below(16) as usize];
            // Flip some of the `r` lowest bits of the family's width.
            let r = rng.below(u64::from(bits) + 1) as u32;
            let low = u128::MAX.checked_shr(128 - r).unwrap_or(0);
            (base ^ ((rng.u128() & low) << (128 - bits))) & family
        };
        let mut inserted = Vec::new();
        let (mut hits, mut probes) = (0usize, 0usize);
        for round in 0..5000 {
            let key = random_key(&mut rng);
            let len = if lens.is_empty() {
                rng.below(u64::from(bits) + 1) as u8
            } else {
                lens[rng.below(lens.len() as u64) as usize]
            };
            let prefix = Prefix::new(to_addr(bits, key), len).expect("valid length");
            match rng.below(10) {
                0..=5 => {
                    let v = rng.below(64) as u32;
                    assert_eq!(t.insert(prefix, v), naive.insert(key, len, v));
                    inserted.push((key, len));
                }
                6 | 7 if !inserted.is_empty() => {
                    let (k, l) = inserted[rng.below(inserted.len() as u64) as usize];
                    let q = Prefix::new(to_addr(bits, k), l).expect("valid length");
                    assert_eq!(t.remove(q), naive.remove(k, l));
                }
                _ => {
                    assert_eq!(t.remove(prefix), naive.remove(key, len));
                }
            }
            if round % 400 == 0 {
                check_shape(&t.v4);
                check_shape(&t.v6);
            }
            if round % 400 == 399 {
                let v = rng.below(64) as u32;
                let before = naive.entries.len();
                naive.entries.retain(|e| e.2 != v);
                assert_eq!(remove_all_of(&mut t, v), before - naive.entries.len());
            }
            assert_eq!(t.len(), naive.entries.len());
            assert_eq!(t.get(prefix), naive.get(key, len));
            let mut round_probes = [0u128; 3];
            for slot in &mut round_probes {
                let probe = match rng.below(4) {
                    0 => rng.u128() & family,
                    1 if !inserted.is_empty() => {
                        // Inside a prefix inserted earlier (if still there).
                        let (k, l) = inserted[rng.below(inserted.len() as u64) as usize];
                        let host = u128::MAX.checked_shr(u32::from(l)).unwrap_or(0);
                        (k | (rng.u128() & host)) & family
                    }
                    _ => random_key(&mut rng),
                };
                *slot = probe;
                let expected = naive.lookup(probe);
                hits += usize::from(expected.is_some());
                probes += 1;
                assert_eq!(
                    t.lookup(to_addr(bits, probe)),
                    expected,
                    "lookup {} at round {round}",
                    to_addr(bits, probe)
                );
            }
            let expected = round_probes.map(|k| naive.lookup(k));
            let mut out = [None; 3];
            if bits == 32 {
                t.lookup_v4_burst(
                    &round_probes.map(|k| ((k >> 96) as u32).to_be_bytes()),
                    &mut out,
                );
            } else {
                t.lookup_v6_burst(&round_probes.map(u128::to_be_bytes), &mut out);
            }
            assert_eq!(out, expected, "burst at round {round}");
        }
        // Lookups took the path these lengths call for.
        let uses_index = if bits == 32 {
            t.v4.uses_index()
        } else {
            t.v6.uses_index()
        };
        assert_eq!(
            uses_index,
            !lens.is_empty() && lens.len() <= MAX_HASH_PROBES
        );
        // Enough probes find an owner for the comparison to mean something.
        assert!(hits * 8 > probes, "{hits} hits in {probes} probes");
        check_shape(&t.v4);
        check_shape(&t.v6);
        // Every stored prefix is reported exactly once with its owner.
        let mut ours: Vec<(IpAddr, u8, u32)> = t
            .iter()
            .map(|(q, v)| (q.addr(), q.prefix_len(), v))
            .collect();
        let mut theirs: Vec<(IpAddr, u8, u32)> = naive
            .entries
            .iter()
            .map(|&(k, l, v)| (to_addr(bits, k), l, v))
            .collect();
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs);
        // And draining it by peer leaves an empty table.
        for v in 0..64 {
            remove_all_of(&mut t, v);
        }
        assert!(t.is_empty());
        assert_eq!(t.lookup(to_addr(bits, bases[0])), None);
    }

    /// Removes every prefix of peer `v` through the public API; how many.
    fn remove_all_of(t: &mut AllowedIps<u32>, v: u32) -> usize {
        let doomed: Vec<Prefix> = t.iter().filter(|&(_, x)| x == v).map(|(p, _)| p).collect();
        for &p in &doomed {
            t.remove(p);
        }
        doomed.len()
    }

    #[test]
    fn randomized_v4_matches_naive() {
        randomized(32, 0x9e37_79b9_7f4a_7c15, &[]);
        randomized(32, 1, &[]);
        randomized(32, 2, &[0, 8, 16, 24, 30, 32]);
        randomized(32, 3, &[32]);
    }

    #[test]
    fn randomized_v6_matches_naive() {
        randomized(128, 0xdead_beef_cafe_f00d, &[]);
        randomized(128, 7, &[]);
        randomized(128, 8, &[0, 32, 48, 56, 64, 127, 128]);
        randomized(128, 9, &[128]);
    }
}
