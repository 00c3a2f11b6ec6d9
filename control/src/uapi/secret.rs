//! A growable byte buffer for text that may hold keys (UAPI requests and
//! `get` answers): it wipes every allocation it gives up, when it grows
//! and when it is dropped. A plain `String` or `Vec` that grows leaves the
//! old copy of its bytes in freed memory, and `Zeroizing` wipes only the
//! last allocation.

use zeroize::{Zeroize, Zeroizing};

/// Bytes that are wiped wherever they were held.
#[derive(Default)]
pub struct SecretBuf {
    bytes: Vec<u8>,
}

impl std::fmt::Debug for SecretBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBuf")
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

impl SecretBuf {
    /// An empty buffer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(capacity),
        }
    }

    /// Makes room for `additional` more bytes: a new allocation (at least
    /// twice the old one) takes the bytes, and the old one is wiped.
    pub fn reserve(&mut self, additional: usize) {
        let need = self.bytes.len().saturating_add(additional);
        if need <= self.bytes.capacity() {
            return;
        }
        let mut grown = Vec::with_capacity(need.max(self.bytes.capacity().saturating_mul(2)));
        grown.extend_from_slice(&self.bytes);
        // Wipes the whole old allocation, spare capacity included.
        self.bytes.zeroize();
        self.bytes = grown;
    }

    /// Appends `data`.
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        self.reserve(data.len());
        self.bytes.extend_from_slice(data);
    }

    /// The bytes held.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes held, to fill in place.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// Number of bytes held.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Removes the first `n` bytes, wiping them first.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.bytes.len());
        self.bytes[..n].zeroize();
        self.bytes.drain(..n);
    }

    /// The text, in the same allocation (no copy), wiped when dropped.
    /// Bytes that are not UTF-8 (never the case for what `fmt::Write`
    /// appended) give an empty string, and are wiped.
    pub fn into_string(mut self) -> Zeroizing<String> {
        let bytes = std::mem::take(&mut self.bytes);
        Zeroizing::new(String::from_utf8(bytes).unwrap_or_else(|e| {
            e.into_bytes().zeroize();
            String::new()
        }))
    }
}

impl std::fmt::Write for SecretBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

impl Drop for SecretBuf {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    #[test]
    fn grows_keeps_the_bytes_and_consumes_from_the_front() {
        let mut b = SecretBuf::with_capacity(4);
        for i in 0..100u8 {
            b.extend_from_slice(&[i]);
        }
        assert_eq!(b.len(), 100);
        assert!(b.as_bytes().iter().copied().eq(0..100u8));
        b.consume(90);
        assert_eq!(b.as_bytes(), &[90, 91, 92, 93, 94, 95, 96, 97, 98, 99]);
        b.consume(1000);
        assert!(b.is_empty());
        let mut t = SecretBuf::default();
        write!(t, "key={}", 7).expect("write");
        assert_eq!(&*t.into_string(), "key=7");
    }
}
