//! `rte_flow` rules that steer received packets to one RX queue by their
//! destination prefix: pattern `ETH / IPV4 or IPV6 (destination under a
//! mask) / END`, actions `QUEUE / END`.
//!
//! A [`QueueRule`] is plain data (the bytes to match, the queue, the
//! priority) and can be built and checked without EAL. [`Port::flow_validate`]
//! asks the device whether it would take a rule; [`Port::flow_create`]
//! installs it and returns a [`Flow`], which destroys the rule when dropped.
//! A `Flow` borrows its port, so every rule is destroyed before the port
//! is stopped and closed.

use std::ffi::{c_void, CStr};
use std::net::IpAddr;
use std::ptr::{self, NonNull};

use super::{Port, RteError};
use crate::ffi;

/// The destination to match, in network byte order, with its mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DstMatch {
    /// An IPv4 destination prefix.
    V4 {
        /// The address with its host bits cleared.
        spec: [u8; 4],
        /// One bits over the prefix.
        mask: [u8; 4],
    },
    /// An IPv6 destination prefix.
    V6 {
        /// The address with its host bits cleared.
        spec: [u8; 16],
        /// One bits over the prefix.
        mask: [u8; 16],
    },
}

/// Packets to a destination prefix go to one RX queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueueRule {
    dst: DstMatch,
    prefix_len: u8,
    queue: u16,
}

/// Spec and mask bytes of a prefix of `len` bits over `addr`.
fn prefix_bytes<const N: usize>(addr: [u8; N], len: u8) -> ([u8; N], [u8; N]) {
    let mut mask = [0u8; N];
    let mut bits = usize::from(len);
    for m in &mut mask {
        let take = bits.min(8);
        // `take` is 0..=8: shifting a u16 keeps the 8-bit case in range.
        *m = (0xff00u16 >> take) as u8;
        bits -= take;
    }
    let mut spec = addr;
    for (s, m) in spec.iter_mut().zip(mask) {
        *s &= m;
    }
    (spec, mask)
}

impl QueueRule {
    /// Packets to `addr`/`prefix_len` go to RX queue `queue`. Host bits of
    /// `addr` are cleared. Fails if the length is over 32 (IPv4) or 128
    /// (IPv6).
    pub fn new(addr: IpAddr, prefix_len: u8, queue: u16) -> Result<Self, RteError> {
        let dst = match addr {
            IpAddr::V4(a) if prefix_len <= 32 => {
                let (spec, mask) = prefix_bytes(a.octets(), prefix_len);
                DstMatch::V4 { spec, mask }
            }
            IpAddr::V6(a) if prefix_len <= 128 => {
                let (spec, mask) = prefix_bytes(a.octets(), prefix_len);
                DstMatch::V6 { spec, mask }
            }
            _ => {
                return Err(RteError::invalid(
                    "QueueRule::new",
                    format!("{addr}/{prefix_len}: prefix length out of range"),
                ))
            }
        };
        Ok(Self {
            dst,
            prefix_len,
            queue,
        })
    }

    /// The destination bytes to match and their mask.
    pub fn dst(&self) -> DstMatch {
        self.dst
    }

    /// The RX queue its packets go to.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// The rule's priority (0 is the highest): the bits the prefix leaves
    /// open, so that where prefixes overlap the longest one wins, as in the
    /// allowed-IPs lookup.
    pub fn priority(&self) -> u32 {
        let max = match self.dst {
            DstMatch::V4 { .. } => 32,
            DstMatch::V6 { .. } => 128,
        };
        max - u32::from(self.prefix_len)
    }

    /// Calls `f` with the rule in DPDK's terms: attributes, pattern and
    /// actions, all valid for the duration of the call.
    fn with_ffi<R>(
        &self,
        f: impl FnOnce(&ffi::rte_flow_attr, &[ffi::rte_flow_item], &[ffi::rte_flow_action]) -> R,
    ) -> R {
        let mut attr = ffi::rte_flow_attr {
            priority: self.priority(),
            ..Default::default()
        };
        attr.set_ingress(1);
        let (v4, v6) = ffi_items(&self.dst);
        let (l3, spec, mask): (_, *const c_void, *const c_void) = match (&v4, &v6) {
            (Some((s, m)), _) => (
                ffi::RTE_FLOW_ITEM_TYPE_IPV4,
                ptr::from_ref(s).cast(),
                ptr::from_ref(m).cast(),
            ),
            (None, Some((s, m))) => (
                ffi::RTE_FLOW_ITEM_TYPE_IPV6,
                ptr::from_ref(s).cast(),
                ptr::from_ref(m).cast(),
            ),
            (None, None) => unreachable!("ffi_items gives one of the two"),
        };
        let item = |type_, spec, mask| ffi::rte_flow_item {
            type_,
            spec,
            last: ptr::null(),
            mask,
        };
        let pattern = [
            item(ffi::RTE_FLOW_ITEM_TYPE_ETH, ptr::null(), ptr::null()),
            item(l3, spec, mask),
            item(ffi::RTE_FLOW_ITEM_TYPE_END, ptr::null(), ptr::null()),
        ];
        let queue = ffi::rte_flow_action_queue { index: self.queue };
        let actions = [
            ffi::rte_flow_action {
                type_: ffi::RTE_FLOW_ACTION_TYPE_QUEUE,
                conf: ptr::from_ref(&queue).cast(),
            },
            ffi::rte_flow_action {
                type_: ffi::RTE_FLOW_ACTION_TYPE_END,
                conf: ptr::null(),
            },
        ];
        f(&attr, &pattern, &actions)
    }
}

type V4Item = (ffi::rte_flow_item_ipv4, ffi::rte_flow_item_ipv4);
type V6Item = (ffi::rte_flow_item_ipv6, ffi::rte_flow_item_ipv6);

/// The IP item's spec and mask structures for a destination match (every
/// other header field zero in both: not matched).
fn ffi_items(dst: &DstMatch) -> (Option<V4Item>, Option<V6Item>) {
    match *dst {
        DstMatch::V4 { spec, mask } => {
            let item = |bytes: [u8; 4]| {
                let mut i = ffi::rte_flow_item_ipv4::default();
                // Big-endian on the wire: the bytes as they are in memory.
                i.hdr.dst_addr = u32::from_ne_bytes(bytes);
                i
            };
            (Some((item(spec), item(mask))), None)
        }
        DstMatch::V6 { spec, mask } => {
            let item = |bytes: [u8; 16]| {
                let mut i = ffi::rte_flow_item_ipv6::default();
                i.hdr.dst_addr = bytes;
                i
            };
            (None, Some((item(spec), item(mask))))
        }
    }
}

/// An installed rule, destroyed on drop (before its port can close).
pub struct Flow<'p> {
    port: &'p Port,
    flow: NonNull<ffi::rte_flow>,
    rule: QueueRule,
}

// SAFETY: ethdev serialises rte_flow calls on a port that does not declare
// them thread-safe, so the handle may be destroyed from any thread.
unsafe impl Send for Flow<'_> {}

impl std::fmt::Debug for Flow<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow")
            .field("port", &self.port.id())
            .field("rule", &self.rule)
            .finish()
    }
}

impl Flow<'_> {
    /// The rule it installed.
    pub fn rule(&self) -> &QueueRule {
        &self.rule
    }
}

impl Drop for Flow<'_> {
    fn drop(&mut self) {
        let mut error = ffi::rte_flow_error::default();
        // SAFETY: a rule created on this port and not destroyed yet; the
        // port is open (borrowed).
        let ret = unsafe { ffi::rte_flow_destroy(self.port.id(), self.flow.as_ptr(), &mut error) };
        if ret != 0 {
            let e = flow_error(
                format!("rte_flow_destroy(port {})", self.port.id()),
                ret,
                &error,
            );
            tracing::warn!("{e}");
        }
    }
}

/// An error from an rte_flow call: its errno, with the PMD's own message
/// where it gave one.
fn flow_error(op: String, ret: i32, error: &ffi::rte_flow_error) -> RteError {
    let mut e = RteError::from_ret(op, ret);
    if !error.message.is_null() {
        // SAFETY: the PMD points at a NUL-terminated static string.
        let msg = unsafe { CStr::from_ptr(error.message) }.to_string_lossy();
        e.message = format!("{msg} ({})", e.message);
    }
    e
}

/// `rte_flow_validate` or `rte_flow_create`.
type FlowCall<R> = unsafe extern "C" fn(
    u16,
    *const ffi::rte_flow_attr,
    *const ffi::rte_flow_item,
    *const ffi::rte_flow_action,
    *mut ffi::rte_flow_error,
) -> R;

impl Port {
    /// Calls `call` with `rule` on this port; its result and error record.
    fn flow_call<R>(&self, rule: &QueueRule, call: FlowCall<R>) -> (R, ffi::rte_flow_error) {
        let mut error = ffi::rte_flow_error::default();
        let r = rule.with_ffi(|attr, pattern, actions| {
            // SAFETY: the pattern and actions end with END and, like the
            // attributes and the error record, live for the call.
            unsafe {
                call(
                    self.id(),
                    attr,
                    pattern.as_ptr(),
                    actions.as_ptr(),
                    &mut error,
                )
            }
        });
        (r, error)
    }

    /// Whether the device would take `rule` (`rte_flow_validate`): the
    /// error says why not (`ENOSYS`/`ENOTSUP` where it has no rte_flow).
    pub fn flow_validate(&self, rule: &QueueRule) -> Result<(), RteError> {
        let (ret, error) = self.flow_call(rule, ffi::rte_flow_validate);
        if ret != 0 {
            return Err(flow_error(
                format!("rte_flow_validate(port {})", self.id()),
                ret,
                &error,
            ));
        }
        Ok(())
    }

    /// Installs `rule` (`rte_flow_create`); dropping the [`Flow`] removes it.
    pub fn flow_create(&self, rule: &QueueRule) -> Result<Flow<'_>, RteError> {
        let (flow, error) = self.flow_call(rule, ffi::rte_flow_create);
        match NonNull::new(flow) {
            Some(flow) => Ok(Flow {
                port: self,
                flow,
                rule: *rule,
            }),
            None => Err(flow_error(
                format!("rte_flow_create(port {})", self.id()),
                -1,
                &error,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str, len: u8) -> QueueRule {
        QueueRule::new(s.parse().expect("address"), len, 1).expect("rule")
    }

    #[test]
    fn v4_prefixes_give_spec_and_mask_bytes() {
        let r = rule("10.9.1.77", 24);
        assert_eq!(
            r.dst(),
            DstMatch::V4 {
                spec: [10, 9, 1, 0],
                mask: [255, 255, 255, 0]
            }
        );
        assert_eq!(r.priority(), 8);
        let r = rule("10.9.1.77", 21);
        assert_eq!(
            r.dst(),
            DstMatch::V4 {
                spec: [10, 9, 0, 0],
                mask: [255, 255, 248, 0]
            }
        );
        let host = rule("10.9.0.2", 32);
        assert_eq!(
            host.dst(),
            DstMatch::V4 {
                spec: [10, 9, 0, 2],
                mask: [255; 4]
            }
        );
        assert_eq!(host.priority(), 0, "a host route beats every prefix");
        assert_eq!(
            rule("10.9.0.2", 0).dst(),
            DstMatch::V4 {
                spec: [0; 4],
                mask: [0; 4]
            }
        );
        assert!(QueueRule::new("10.0.0.0".parse().expect("addr"), 33, 0).is_err());
    }

    #[test]
    fn v6_prefixes_give_spec_and_mask_bytes() {
        let r = rule("fd00:9:ffff::1", 36);
        let mut spec = [0u8; 16];
        spec[..5].copy_from_slice(&[0xfd, 0x00, 0x00, 0x09, 0xf0]);
        let mut mask = [0u8; 16];
        mask[..5].copy_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xf0]);
        assert_eq!(r.dst(), DstMatch::V6 { spec, mask });
        assert_eq!(r.priority(), 92);
        let all = rule("2001:db8::1", 128);
        assert!(matches!(all.dst(), DstMatch::V6 { mask, .. } if mask == [0xff; 16]));
        assert!(QueueRule::new("::".parse().expect("addr"), 129, 0).is_err());
    }

    /// The DPDK structures carry the bytes at the destination field and
    /// nothing anywhere else, and the pattern and actions are in order.
    #[test]
    fn ffi_pattern_carries_the_destination_only() {
        fn bytes<T>(t: &T) -> &[u8] {
            // SAFETY: reading a plain C struct's bytes (zero-initialised,
            // so padding is defined).
            unsafe { std::slice::from_raw_parts(ptr::from_ref(t).cast(), size_of::<T>()) }
        }
        let r = rule("10.9.0.0", 16);
        let (Some((spec, mask)), None) = ffi_items(&r.dst()) else {
            panic!("IPv4 items");
        };
        let at = std::mem::offset_of!(ffi::rte_ipv4_hdr, dst_addr);
        let mut want = [0u8; size_of::<ffi::rte_flow_item_ipv4>()];
        want[at..at + 4].copy_from_slice(&[10, 9, 0, 0]);
        assert_eq!(bytes(&spec), want);
        want[at..at + 4].copy_from_slice(&[255, 255, 0, 0]);
        assert_eq!(bytes(&mask), want);

        let r = rule("fd00:9::", 64);
        let (None, Some((spec, mask))) = ffi_items(&r.dst()) else {
            panic!("IPv6 items");
        };
        let at = std::mem::offset_of!(ffi::rte_ipv6_hdr, dst_addr);
        let mut want = [0u8; size_of::<ffi::rte_flow_item_ipv6>()];
        want[at..at + 4].copy_from_slice(&[0xfd, 0, 0, 9]);
        assert_eq!(bytes(&spec), want);
        want[at..at + 8].copy_from_slice(&[0xff; 8]);
        assert_eq!(bytes(&mask), want);

        r.with_ffi(|attr, pattern, actions| {
            assert_eq!((attr.ingress(), attr.egress(), attr.priority), (1, 0, 64));
            let types: Vec<_> = pattern.iter().map(|i| i.type_).collect();
            assert_eq!(
                types,
                [
                    ffi::RTE_FLOW_ITEM_TYPE_ETH,
                    ffi::RTE_FLOW_ITEM_TYPE_IPV6,
                    ffi::RTE_FLOW_ITEM_TYPE_END
                ]
            );
            assert!(pattern[0].spec.is_null() && pattern[0].mask.is_null());
            // SAFETY: the IPv6 item points at an rte_flow_item_ipv6.
            let m = unsafe { &*pattern[1].mask.cast::<ffi::rte_flow_item_ipv6>() };
            assert_eq!(
                m.hdr.dst_addr[..9],
                [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0]
            );
            assert_eq!(actions[0].type_, ffi::RTE_FLOW_ACTION_TYPE_QUEUE);
            // SAFETY: the QUEUE action's conf is an rte_flow_action_queue.
            let q = unsafe { &*actions[0].conf.cast::<ffi::rte_flow_action_queue>() };
            assert_eq!(q.index, 1);
            assert_eq!(actions[1].type_, ffi::RTE_FLOW_ACTION_TYPE_END);
        });
    }
}
