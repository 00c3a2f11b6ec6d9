//! Routes in a kernel routing table, over rtnetlink (RFC 3549; the
//! messages are `netlink-packet-route`'s): the sink of the live-route
//! export ([`crate::route_export`]).
//!
//! Every route is `PREFIX dev TAP table T proto wgdp`: a device route on
//! the plaintext exception TAP, tagged with our own routing protocol
//! number [`RTPROT_WGDP`] so that wgdp can tell its routes from anyone
//! else's in the same table (a restart after a crash removes exactly
//! those), and so that BIRD's `kernel` protocol with `learn` imports them
//! as alien routes (it skips `proto kernel` and its own `proto bird`).
//! One request at a time, each acknowledged (`NLM_F_ACK`) before the next:
//! the caller learns which route failed.

use std::io;
use std::net::IpAddr;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP,
    NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use protocol::allowedips::Prefix;

/// The routing protocol number of wgdp's exported routes (`ip route show
/// table T proto 201`); unassigned in iproute2's `rt_protos`.
pub const RTPROT_WGDP: u8 = 201;

/// Why a route could not be exported or withdrawn.
#[derive(Debug, thiserror::Error)]
pub enum KernelRouteError {
    /// The netlink socket could not be opened or used.
    #[error("rtnetlink socket: {0}")]
    Socket(#[source] io::Error),
    /// The exception TAP named in the export does not exist.
    #[error("no interface {0} to export routes on")]
    NoInterface(String),
    /// The kernel refused a request.
    #[error("kernel refused to {op} route {prefix} in table {table}: {source}")]
    Refused {
        /// `add` or `delete`.
        op: &'static str,
        /// The route's prefix.
        prefix: Prefix,
        /// The table.
        table: u8,
        /// The kernel's errno.
        #[source]
        source: io::Error,
    },
    /// The kernel's answer could not be read.
    #[error("unreadable rtnetlink answer: {0}")]
    Decode(String),
}

/// Adds and deletes wgdp's routes in one table, on one interface.
#[derive(Debug)]
pub struct KernelRoutes {
    socket: Socket,
    table: u8,
    ifindex: u32,
    sequence: u32,
    buf: Vec<u8>,
}

impl KernelRoutes {
    /// An rtnetlink socket for routes in `table` on `interface`.
    pub fn open(table: u8, interface: &str) -> Result<Self, KernelRouteError> {
        let ifindex = nix::net::if_::if_nametoindex(interface)
            .map_err(|_| KernelRouteError::NoInterface(interface.to_owned()))?;
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(KernelRouteError::Socket)?;
        socket.bind_auto().map_err(KernelRouteError::Socket)?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(KernelRouteError::Socket)?;
        Ok(Self {
            socket,
            table,
            ifindex,
            sequence: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Adds (or replaces) the route to `prefix`.
    pub fn add(&mut self, prefix: Prefix) -> Result<(), KernelRouteError> {
        let msg = self.route(prefix);
        self.request(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map_err(|e| self.refused("add", prefix, e))
    }

    /// Deletes the route to `prefix`; one already gone (its interface
    /// went away, or someone deleted it) is not an error.
    pub fn delete(&mut self, prefix: Prefix) -> Result<(), KernelRouteError> {
        let msg = self.route(prefix);
        match self.request(RouteNetlinkMessage::DelRoute(msg), 0) {
            Err(Answer::Errno(e)) if e.raw_os_error() == Some(nix::errno::Errno::ESRCH as i32) => {
                Ok(())
            }
            other => other.map_err(|e| self.refused("delete", prefix, e)),
        }
    }

    /// Deletes every route of ours in the table, on any interface (a
    /// previous run's that crashed, or that used another TAP name).
    /// Returns how many it deleted.
    pub fn flush(&mut self) -> Result<usize, KernelRouteError> {
        let mut stale = Vec::new();
        let table = u32::from(self.table);
        self.dump(|m| {
            let ours = m.header.protocol == RouteProtocol::Other(RTPROT_WGDP);
            if ours && table_of(m) == table {
                stale.push(m.clone());
            }
        })?;
        let n = stale.len();
        for m in stale {
            let prefix = destination(&m);
            match self.request(RouteNetlinkMessage::DelRoute(m), 0) {
                Err(Answer::Errno(e))
                    if e.raw_os_error() == Some(nix::errno::Errno::ESRCH as i32) => {}
                Err(e) => {
                    return Err(match prefix {
                        Some(p) => self.refused("delete", p, e),
                        None => KernelRouteError::Decode(e.to_string()),
                    })
                }
                Ok(()) => {}
            }
        }
        Ok(n)
    }

    fn route(&self, prefix: Prefix) -> RouteMessage {
        let mut msg = RouteMessage::default();
        let (family, dest) = match prefix.addr() {
            IpAddr::V4(a) => (AddressFamily::Inet, RouteAddress::Inet(a)),
            IpAddr::V6(a) => (AddressFamily::Inet6, RouteAddress::Inet6(a)),
        };
        msg.header = RouteHeader {
            address_family: family,
            destination_prefix_length: prefix.prefix_len(),
            table: self.table,
            protocol: RouteProtocol::Other(RTPROT_WGDP),
            // Universe, like any route learned from a routing daemon
            // (scripts/cluster-demo.sh checks BIRD learns and announces
            // them).
            scope: RouteScope::Universe,
            kind: RouteType::Unicast,
            ..RouteHeader::default()
        };
        msg.attributes = vec![
            RouteAttribute::Destination(dest),
            RouteAttribute::Oif(self.ifindex),
            RouteAttribute::Table(u32::from(self.table)),
        ];
        msg
    }

    fn refused(&self, op: &'static str, prefix: Prefix, e: Answer) -> KernelRouteError {
        match e {
            Answer::Errno(source) => KernelRouteError::Refused {
                op,
                prefix,
                table: self.table,
                source,
            },
            Answer::Socket(e) => KernelRouteError::Socket(e),
            Answer::Decode(e) => KernelRouteError::Decode(e),
        }
    }

    fn send(&mut self, payload: RouteNetlinkMessage, flags: u16) -> Result<u32, Answer> {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(payload));
        packet.finalize();
        let mut out = vec![0; packet.buffer_len()];
        packet.serialize(&mut out);
        self.socket.send(&out, 0).map_err(Answer::Socket)?;
        Ok(self.sequence)
    }

    /// Sends one request and waits for its acknowledgement.
    fn request(&mut self, payload: RouteNetlinkMessage, flags: u16) -> Result<(), Answer> {
        let seq = self.send(payload, flags | NLM_F_ACK)?;
        let mut result = None;
        self.receive(seq, |m| match m {
            NetlinkPayload::Error(e) => {
                result = Some(match e.code {
                    None => Ok(()),
                    Some(code) => Err(Answer::Errno(io::Error::from_raw_os_error(-code.get()))),
                });
                true
            }
            _ => false,
        })?;
        result.unwrap_or_else(|| Err(Answer::Decode("no acknowledgement".into())))
    }

    /// Dumps the routes of the table's address families to `each`.
    fn dump(&mut self, mut each: impl FnMut(&RouteMessage)) -> Result<(), KernelRouteError> {
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut msg = RouteMessage::default();
            msg.header.address_family = family;
            let seq = self
                .send(RouteNetlinkMessage::GetRoute(msg), NLM_F_DUMP)
                .map_err(|e| KernelRouteError::Decode(e.to_string()))?;
            let mut failed = None;
            self.receive(seq, |m| match m {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) => {
                    each(r);
                    false
                }
                NetlinkPayload::Done(_) => true,
                NetlinkPayload::Error(e) => {
                    failed = e.code;
                    true
                }
                _ => false,
            })
            .map_err(|e| KernelRouteError::Decode(e.to_string()))?;
            if let Some(code) = failed {
                return Err(KernelRouteError::Socket(io::Error::from_raw_os_error(
                    -code.get(),
                )));
            }
        }
        Ok(())
    }

    /// Reads messages of sequence `seq` until `done` says so.
    fn receive(
        &mut self,
        seq: u32,
        mut done: impl FnMut(&NetlinkPayload<RouteNetlinkMessage>) -> bool,
    ) -> Result<(), Answer> {
        loop {
            let n = self
                .socket
                .recv(&mut &mut self.buf[..], 0)
                .map_err(Answer::Socket)?;
            let mut offset = 0;
            while offset < n {
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[offset..n])
                    .map_err(|e| Answer::Decode(e.to_string()))?;
                let len = m.header.length as usize;
                if m.header.sequence_number == seq && done(&m.payload) {
                    return Ok(());
                }
                if len == 0 {
                    break;
                }
                offset += len;
            }
        }
    }
}

/// A route's table: the attribute where present (tables past 255), else
/// the header's.
fn table_of(m: &RouteMessage) -> u32 {
    m.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(m.header.table))
}

/// A route's destination prefix.
fn destination(m: &RouteMessage) -> Option<Prefix> {
    let len = m.header.destination_prefix_length;
    // A default route (length 0) carries no destination attribute.
    let unspecified: IpAddr = match m.header.address_family {
        AddressFamily::Inet6 => std::net::Ipv6Addr::UNSPECIFIED.into(),
        _ => std::net::Ipv4Addr::UNSPECIFIED.into(),
    };
    let addr = m
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Destination(RouteAddress::Inet(a)) => Some((*a).into()),
            RouteAttribute::Destination(RouteAddress::Inet6(a)) => Some((*a).into()),
            _ => None,
        })
        .unwrap_or(unspecified);
    Prefix::new(addr, len).ok()
}

/// How one request went wrong.
#[derive(Debug)]
enum Answer {
    Errno(io::Error),
    Socket(io::Error),
    Decode(String),
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Errno(e) | Self::Socket(e) => e.fmt(f),
            Self::Decode(e) => f.write_str(e),
        }
    }
}
