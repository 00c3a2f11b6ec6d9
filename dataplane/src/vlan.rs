//! 802.1Q VLANs at a worker's port boundary.
//!
//! A port runs untagged, or as one tagged sub-interface (`vlan = N`,
//! `PortNet::vlan`). On RX, before anything else looks at a frame: on an
//! untagged port a frame with a VLAN tag (802.1Q, 802.1ad or the old
//! 0x9100 QinQ) is dropped (`vlan`), except a priority tag (VLAN 0), which
//! belongs to the untagged network (IEEE 802.1Q section 9.6; the kernel
//! accepts it too) and is stripped; on a tagged port only frames with the
//! port's VLAN are kept, their tag stripped, and everything else (other
//! VLANs, untagged) is dropped (`vlan`). This keeps VLAN separation on a
//! trunk: no other VLAN's traffic is tunnelled. On TX the port's tag goes
//! back in after the MAC addresses. In between, the worker and the control
//! thread (which tags what it sends itself, `control::link`) handle
//! untagged frames only, so nothing else knows about VLANs. When the two
//! roles are VLANs of one physical port, the tag also picks the role
//! (`Tx::vlan_side`).

use dpdk_sys::rte::Mbuf;

use crate::wire::ethernet;

/// TPIDs of a VLAN tag: 802.1Q, 802.1ad (service tag), pre-standard QinQ.
const TPIDS: [u16; 3] = [0x8100, 0x88a8, 0x9100];

/// The VLAN id of a frame's outer tag, if it has one (`Some(0)`: a
/// priority tag).
#[inline]
pub(crate) fn vlan_id(frame: &[u8]) -> Option<u16> {
    let tpid = frame.get(ethernet::field::ETHERTYPE)?;
    if !TPIDS.contains(&u16::from_be_bytes([tpid[0], tpid[1]])) {
        return None;
    }
    // A tagged frame too short for its tag: as another VLAN's.
    Some(
        frame
            .get(ethernet::field::VLAN_TCI)
            .map_or(u16::MAX, |t| u16::from_be_bytes([t[0], t[1]]) & 0x0fff),
    )
}

/// A frame received on a port that runs `vlan`: the untagged frame, or
/// the frame back when it was not the port's (the caller drops it as
/// `vlan`).
#[inline]
pub(crate) fn untag(mut m: Mbuf, vlan: Option<u16>) -> Result<Mbuf, Mbuf> {
    let keep = match (vlan_id(m.data()), vlan) {
        (None, None) => return Ok(m),
        (Some(tag), Some(v)) => tag == v,
        (Some(tag), None) => tag == 0,
        (None, Some(_)) => false,
    };
    if !keep || m.strip_vlan().is_err() {
        return Err(m);
    }
    Ok(m)
}

/// A frame about to be sent on a port that runs `vlan`, tagged for it;
/// the frame back when there was no room for the tag (the caller drops it
/// as `no_room`).
#[inline]
pub(crate) fn tag(mut m: Mbuf, vlan: Option<u16>) -> Result<Mbuf, Mbuf> {
    let Some(v) = vlan else {
        return Ok(m);
    };
    if m.insert_vlan(v).is_err() {
        return Err(m);
    }
    Ok(m)
}
