//! Per-source rate limiter for handshake messages under load (whitepaper
//! section 5.3; kernel `ratelimiter.c`): a token bucket of 20 packets per
//! second with a burst of 5, keyed by the IPv4 source address or the /64 of
//! the IPv6 source address.
//!
//! Memory is bounded: the table is allocated once, with a fixed number of
//! set-associative buckets of [`WAYS`] entries, indexed by a keyed hash so
//! that remote parties cannot aim at one bucket. An entry unused for
//! RATELIMIT_ENTRY_TTL is free for reuse (and swept by [`RateLimiter::gc`]).
//! When a bucket is full of live entries a new source is refused, as the
//! kernel refuses when its table is full: under attack, failing closed only
//! costs a retry for a legitimate handshake, which is then let through by
//! mac2 + its own, already tracked, entry.

use std::net::IpAddr;

use rand_core::CryptoRngCore;

use crate::constants::{RATELIMIT_BURST, RATELIMIT_ENTRY_TTL, RATELIMIT_PACKETS_PER_SECOND};
use crate::crypto;
use crate::time::Instant;

/// Entries per bucket.
pub const WAYS: usize = 4;

/// Token cost of one packet, in nanoseconds of refill time.
const PACKET_COST: u64 = 1_000_000_000 / RATELIMIT_PACKETS_PER_SECOND;

/// Bucket capacity: the burst.
const TOKEN_MAX: u64 = PACKET_COST * RATELIMIT_BURST;

/// The rate-limited identity of a source: 4 bytes of IPv4 or the 8-byte IPv6
/// /64 prefix, tagged by family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SourceKey {
    V4([u8; 4]),
    V6([u8; 8]),
}

impl SourceKey {
    fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(a) => SourceKey::V4(a.octets()),
            IpAddr::V6(a) => {
                let mut prefix = [0u8; 8];
                prefix.copy_from_slice(&a.octets()[..8]);
                SourceKey::V6(prefix)
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: SourceKey,
    last: Instant,
    tokens: u64,
}

impl Entry {
    fn is_stale(&self, now: Instant) -> bool {
        self.last.has_expired(RATELIMIT_ENTRY_TTL, now)
    }
}

/// A bounded per-source token-bucket table.
pub struct RateLimiter {
    buckets: Box<[[Option<Entry>; WAYS]]>,
    hash_key: [u8; 16],
}

impl core::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A table for at least `capacity` sources (rounded up to a power of two
    /// number of buckets); the hash key is drawn from `rng`.
    pub fn new(capacity: usize, rng: &mut dyn CryptoRngCore) -> Self {
        let buckets = capacity.div_ceil(WAYS).max(1).next_power_of_two();
        let mut hash_key = [0u8; 16];
        rng.fill_bytes(&mut hash_key);
        RateLimiter {
            buckets: vec![[None; WAYS]; buckets].into_boxed_slice(),
            hash_key,
        }
    }

    /// Number of sources the table can hold.
    pub fn capacity(&self) -> usize {
        self.buckets.len() * WAYS
    }

    /// Number of occupied entries (live or not yet swept).
    pub fn len(&self) -> usize {
        self.buckets
            .iter()
            .flatten()
            .filter(|e| e.is_some())
            .count()
    }

    /// Whether no entry is occupied.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn bucket_of(&self, key: &SourceKey) -> usize {
        let digest = match key {
            SourceKey::V4(a) => crypto::mac(&self.hash_key, &[&[4], a]),
            SourceKey::V6(p) => crypto::mac(&self.hash_key, &[&[6], p]),
        };
        let mut word = [0u8; 8];
        word.copy_from_slice(&digest[..8]);
        (u64::from_le_bytes(word) as usize) & (self.buckets.len() - 1)
    }

    /// Whether one more handshake from `ip` is allowed at `now`; takes a
    /// token if so.
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let key = SourceKey::of(ip);
        let index = self.bucket_of(&key);
        let bucket = &mut self.buckets[index];
        if let Some(entry) = bucket.iter_mut().flatten().find(|e| e.key == key) {
            let elapsed =
                u64::try_from(now.saturating_since(entry.last).as_nanos()).unwrap_or(u64::MAX);
            let tokens = entry.tokens.saturating_add(elapsed).min(TOKEN_MAX);
            entry.last = now;
            let allowed = tokens >= PACKET_COST;
            entry.tokens = if allowed {
                tokens - PACKET_COST
            } else {
                tokens
            };
            return allowed;
        }
        let free = bucket
            .iter_mut()
            .find(|slot| slot.as_ref().is_none_or(|e| e.is_stale(now)));
        match free {
            Some(slot) => {
                *slot = Some(Entry {
                    key,
                    last: now,
                    tokens: TOKEN_MAX - PACKET_COST,
                });
                true
            }
            None => false,
        }
    }

    /// Frees every entry unused for RATELIMIT_ENTRY_TTL; returns how many.
    /// Call about once a second (kernel GC period).
    pub fn gc(&mut self, now: Instant) -> usize {
        let mut removed = 0;
        for slot in self.buckets.iter_mut().flatten() {
            if slot.as_ref().is_some_and(|e| e.is_stale(now)) {
                *slot = None;
                removed += 1;
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn rng() -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::seed_from_u64(7)
    }

    #[test]
    fn burst_then_twenty_per_second() {
        let mut rl = RateLimiter::new(64, &mut rng());
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let t0 = Instant::from_secs(10);
        for i in 0..5 {
            assert!(rl.allow(ip, t0), "burst packet {i}");
        }
        assert!(!rl.allow(ip, t0));
        // One token every 50 ms.
        assert!(!rl.allow(ip, t0 + core::time::Duration::from_millis(49)));
        assert!(rl.allow(ip, t0 + core::time::Duration::from_millis(50)));
        assert!(!rl.allow(ip, t0 + core::time::Duration::from_millis(50)));
        // Over one second: 20 allowed at 50 ms spacing.
        let mut allowed = 0;
        for i in 1..=20u64 {
            if rl.allow(ip, t0 + core::time::Duration::from_millis(50 + 50 * i)) {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 20);
        // Another source is independent.
        assert!(rl.allow(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), t0));
    }

    #[test]
    fn ipv6_is_keyed_by_slash_64() {
        let mut rl = RateLimiter::new(64, &mut rng());
        let t = Instant::from_secs(1);
        for i in 0..5u16 {
            let ip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, i));
            assert!(rl.allow(ip, t));
        }
        assert!(!rl.allow(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 9, 9, 9, 9)),
            t
        ));
        assert!(rl.allow(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1)),
            t
        ));
    }

    #[test]
    fn memory_is_bounded_and_gc_frees_by_time() {
        let mut rl = RateLimiter::new(8, &mut rng());
        assert_eq!(rl.capacity(), 8);
        let t = Instant::from_secs(1);
        let mut refused = 0;
        for i in 0..100u32 {
            if !rl.allow(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), t) {
                refused += 1;
            }
        }
        assert!(rl.len() <= 8);
        assert!(refused >= 92);
        // After the TTL every entry is stale: GC frees them all and new
        // sources are accepted again.
        let later = t + RATELIMIT_ENTRY_TTL;
        assert_eq!(rl.gc(later), rl.capacity().min(100 - refused));
        assert!(rl.is_empty());
        assert!(rl.allow(IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)), later));
    }
}
