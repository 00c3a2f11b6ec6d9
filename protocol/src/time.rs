//! Time as the caller hands it in.
//!
//! The crate never reads a clock. Monotonic time is an [`Instant`]: a
//! [`Duration`] since an arbitrary epoch chosen by the caller (boot, process
//! start, zero in tests). Wall-clock time, needed only for the handshake
//! timestamp (whitepaper section 5.4.2, `TAI64N()`), is a [`Tai64N`] value
//! that the caller also supplies.

use core::ops::{Add, Sub};
use core::time::Duration;

use crate::constants::TIMESTAMP_LEN;

/// A point in monotonic time: the duration since a caller-chosen epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(Duration);

impl Instant {
    /// The epoch itself.
    pub const ZERO: Instant = Instant(Duration::ZERO);

    /// The instant `since_epoch` after the caller's epoch.
    pub const fn from_duration(since_epoch: Duration) -> Self {
        Instant(since_epoch)
    }

    /// The instant `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Instant(Duration::from_secs(secs))
    }

    /// The instant `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Instant(Duration::from_millis(millis))
    }

    /// Time since the epoch.
    pub const fn as_duration(self) -> Duration {
        self.0
    }

    /// `self - earlier`, or zero if `earlier` is later than `self`.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// Whether something born at `self` has reached `age` at `now` (the
    /// kernel's `wg_birthdate_has_expired`: `birth + age <= now`).
    pub fn has_expired(self, age: Duration, now: Instant) -> bool {
        now.saturating_since(self) >= age
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(rhs))
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_sub(rhs))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_since(rhs)
    }
}

/// A TAI64N timestamp: 8-byte big-endian TAI seconds (offset by 2^62) and a
/// 4-byte big-endian nanosecond count, as carried encrypted in the handshake
/// initiation (whitepaper section 5.4.2). Big-endian bytes order the same way
/// as the time they encode, so comparison is byte-wise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tai64N([u8; TIMESTAMP_LEN]);

impl Tai64N {
    /// TAI64 label of the Unix epoch (2^62 + 10 s of TAI-UTC offset, as the
    /// reference implementations use).
    const UNIX_EPOCH_LABEL: u64 = (1 << 62) + 10;

    /// The timestamp of `since_unix_epoch` of wall-clock (UTC) time.
    pub fn from_unix(since_unix_epoch: Duration) -> Self {
        let secs = Self::UNIX_EPOCH_LABEL.saturating_add(since_unix_epoch.as_secs());
        let mut out = [0u8; TIMESTAMP_LEN];
        out[..8].copy_from_slice(&secs.to_be_bytes());
        out[8..].copy_from_slice(&since_unix_epoch.subsec_nanos().to_be_bytes());
        Tai64N(out)
    }

    /// Like [`from_unix`](Self::from_unix), with the nanoseconds rounded down
    /// to a multiple of 2^24 ns (the largest power of two below the 20 ms
    /// initiation interval), as the kernel's `tai64n_now` does so that the
    /// timestamp does not leak the precise clock. Two initiations less than
    /// ~17 ms apart then carry the same timestamp, and the second is refused
    /// as a replay, which the 20 ms flood guard would refuse anyway.
    pub fn from_unix_whitened(since_unix_epoch: Duration) -> Self {
        const GRAIN: u32 = 1 << 24;
        let nanos = since_unix_epoch.subsec_nanos() / GRAIN * GRAIN;
        Self::from_unix(Duration::new(since_unix_epoch.as_secs(), nanos))
    }

    /// A timestamp from its 12-byte wire encoding.
    pub const fn from_bytes(bytes: [u8; TIMESTAMP_LEN]) -> Self {
        Tai64N(bytes)
    }

    /// The 12-byte wire encoding.
    pub const fn to_bytes(self) -> [u8; TIMESTAMP_LEN] {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_arithmetic_saturates() {
        let a = Instant::from_secs(5);
        let b = Instant::from_secs(7);
        assert_eq!(b - a, Duration::from_secs(2));
        assert_eq!(a - b, Duration::ZERO);
        assert!(a.has_expired(Duration::from_secs(2), b));
        assert!(!a.has_expired(Duration::from_secs(3), b));
        assert_eq!(a + Duration::from_secs(2), b);
    }

    #[test]
    fn tai64n_orders_like_time() {
        let t1 = Tai64N::from_unix(Duration::new(1_700_000_000, 999_999_999));
        let t2 = Tai64N::from_unix(Duration::new(1_700_000_001, 0));
        assert!(t2 > t1);
        assert_eq!(Tai64N::from_bytes(t1.to_bytes()), t1);
        assert_eq!(t1.to_bytes()[0], 0x40);
    }

    #[test]
    fn whitening_rounds_nanoseconds_down() {
        let a = Tai64N::from_unix_whitened(Duration::new(10, 16_000_000));
        let b = Tai64N::from_unix_whitened(Duration::new(10, 1_000));
        let c = Tai64N::from_unix_whitened(Duration::new(10, 17_000_000));
        assert_eq!(a, b);
        assert!(c > a);
        assert_eq!(c.to_bytes()[8..], (1u32 << 24).to_be_bytes());
    }
}
