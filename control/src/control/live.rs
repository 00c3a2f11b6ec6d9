//! Live changes and inspection through the UAPI: the control thread answers
//! `get` from its own state and applies `set` without a restart and without
//! touching other peers: a new peer is handed to its owner lcore, a removed
//! one is taken away, and the workers get a new routing snapshot. Large
//! requests are served a slice per control-loop round (handshakes and
//! timers run between the slices): a `set` [`SET_SLICE`] peers at a time,
//! a `get`'s or `wgdp show`'s snapshot [`GET_SLICE`] slots at a time.

use std::collections::HashSet;
use std::time::Duration;

use crossbeam_channel::Sender;
use dataplane::command::Command;
use dataplane::peer::PeerId;
use protocol::crypto::PublicKey;
use protocol::time::Instant;
use zeroize::Zeroizing;

use crate::control::Control;
use crate::peers::NewPeer;
use crate::show::{Show, ShowJob};
use crate::uapi::proto::{self, errno, InterfaceInfo, PeerInfo, Request, SetRequest, UapiError};
use crate::uapi::server::{Persist, Reply};

/// Peers of a `set` applied per control-loop round: a `wg setconf` of
/// 100k peers takes the control thread about a second in one go, which
/// would stall handshakes and timers.
pub const SET_SLICE: usize = 1024;

/// Peer slots a `get` copies per control-loop round: a snapshot of 100k
/// peers in one go held the control thread for 30-120 ms (docs/scale.md);
/// 4096 of them take a few milliseconds.
pub const GET_SLICE: usize = 4096;

/// A UAPI request served over several control-loop rounds; requests behind
/// it wait until it is done.
pub(crate) enum UapiJob {
    /// A `set` being applied.
    Set(SetJob),
    /// A `get`'s snapshot being taken.
    Get(GetJob),
    /// A `wgdp show` document being built, and where it goes.
    Show(ShowJob, Sender<Reply>),
}

/// A `get` whose snapshot is taken a slice of the table per round. Each
/// peer is copied whole within one round (its keys, endpoint, counters and
/// allowed IPs as they were together); the configuration cannot change
/// before the last slice, as `set`s wait behind it. The socket's thread
/// renders the finished snapshot. Keys held are wiped when it drops.
pub(crate) struct GetJob {
    info: Box<InterfaceInfo>,
    /// The next peer slot to copy.
    next: usize,
    /// Where the answer goes (none when taken in one go).
    reply: Option<Sender<Reply>>,
}

/// A checked `set` being applied, a slice per round.
pub(crate) struct SetJob {
    set: Box<SetRequest>,
    /// Where the answer goes (none when applied in one go).
    reply: Option<Sender<Reply>>,
    /// The next of its peers to apply.
    next: usize,
    /// The peers it names (for `replace_peers`).
    named: HashSet<PublicKey>,
    /// Peers whose table entry changes, in order: the ones the request
    /// names, and those that lost a prefix to another.
    changed: Vec<PeerId>,
    persist: Persist,
}

impl SetJob {
    fn new(set: Box<SetRequest>, reply: Option<Sender<Reply>>) -> Self {
        Self {
            set,
            reply,
            next: 0,
            named: HashSet::new(),
            changed: Vec::new(),
            persist: Persist::default(),
        }
    }
}

/// The answer to `wgdp show`: the document, whose JSON the socket's
/// thread renders.
fn show_reply(show: Show) -> Reply {
    Reply {
        show: Some(Box::new(show)),
        ..Reply::text(Zeroizing::default())
    }
}

/// The answer to a refused `set` (logged).
fn refused(e: &UapiError) -> Reply {
    tracing::warn!(errno = e.errno, "uapi: set refused: {e}");
    Reply::text(Zeroizing::new(proto::render_errno(e.errno)))
}

impl Control<'_> {
    /// Answers the UAPI requests waiting, or goes on with a large `set`
    /// ([`SET_SLICE`] of its peers per round) or a `get`'s snapshot
    /// ([`GET_SLICE`] slots per round), so that handshakes and timers run
    /// between the slices; later requests wait until it is done. Returns
    /// how many requests or slices it handled.
    pub(crate) fn uapi_round(&mut self, now: Instant) -> usize {
        match self.uapi_job.take() {
            Some(UapiJob::Set(mut job)) => {
                self.apply_slice(&mut job, now);
                self.finish_or_keep(job, now);
                return 1;
            }
            Some(UapiJob::Get(mut job)) => {
                self.snapshot_slice(&mut job);
                self.answer_get_or_keep(job);
                return 1;
            }
            Some(UapiJob::Show(job, reply)) => {
                self.answer_show_or_keep(job, reply);
                return 1;
            }
            None => {}
        }
        let mut n = 0;
        while let Some(call) = self.uapi.as_ref().and_then(|rx| rx.try_recv().ok()) {
            n += 1;
            let set = match call.request {
                Request::Set(set) => set,
                Request::Get => {
                    let mut job = self.start_get(Some(call.reply));
                    self.snapshot_slice(&mut job);
                    if !self.answer_get_or_keep(job) {
                        // The rest in the next rounds.
                        return n;
                    }
                    continue;
                }
                Request::WgdpShow { peers: true } => {
                    if !self.answer_show_or_keep(self.start_show(), call.reply) {
                        // The rest in the next rounds.
                        return n;
                    }
                    continue;
                }
                Request::WgdpShow { peers: false } => {
                    // The server may have given up waiting; nothing to do
                    // then.
                    let _ = call.reply.send(show_reply(self.show_without_peers()));
                    continue;
                }
            };
            match self.check_set(&set) {
                Ok(()) => {
                    let mut job = SetJob::new(set, Some(call.reply));
                    self.apply_slice(&mut job, now);
                    if !self.finish_or_keep(job, now) {
                        // The rest in the next rounds.
                        return n;
                    }
                }
                Err(e) => {
                    let _ = call.reply.send(refused(&e));
                }
            }
        }
        n
    }

    /// Answers a `set` whose peers are all applied (true), or keeps it
    /// for the next round.
    fn finish_or_keep(&mut self, mut job: SetJob, now: Instant) -> bool {
        if job.next < job.set.peers.len() {
            self.uapi_job = Some(UapiJob::Set(job));
            return false;
        }
        let persist = self.finish_set(&mut job, now);
        if let Some(reply) = job.reply.take() {
            let _ = reply.send(Reply {
                persist,
                ..Reply::text(Zeroizing::new(proto::render_errno(errno::OK)))
            });
        }
        true
    }

    /// Answers a request in one go, as [`Self::uapi_round`] does over
    /// several rounds: the path the tests drive one request at a time.
    #[cfg(test)]
    fn answer(&mut self, request: Request, now: Instant) -> Reply {
        match request {
            // A snapshot: the socket's thread renders it.
            Request::Get => Reply {
                snapshot: Some(Box::new(self.interface_info())),
                ..Reply::text(Zeroizing::default())
            },
            // The document: the socket's thread renders its JSON.
            Request::WgdpShow { peers: true } => show_reply(self.show()),
            Request::WgdpShow { peers: false } => show_reply(self.show_without_peers()),
            Request::Set(set) => match self.apply_set(set, now) {
                Ok(persist) => Reply {
                    persist,
                    ..Reply::text(Zeroizing::new(proto::render_errno(errno::OK)))
                },
                Err(e) => refused(&e),
            },
        }
    }

    /// The whole snapshot for a `get`, in one go.
    #[cfg(test)]
    fn interface_info(&self) -> InterfaceInfo {
        let mut job = self.start_get(None);
        while job.next < self.table.peers.slots() {
            self.snapshot_slice(&mut job);
        }
        *job.info
    }

    /// A `get` with nothing copied yet.
    fn start_get(&self, reply: Option<Sender<Reply>>) -> GetJob {
        GetJob {
            info: Box::new(InterfaceInfo {
                private_key: self.private_key.clone(),
                listen_port: self.listen_port,
                peers: Vec::with_capacity(self.table.peers.len()),
            }),
            next: 0,
            reply,
        }
    }

    /// Copies the peers of the next [`GET_SLICE`] slots into a `get`.
    fn snapshot_slice(&self, job: &mut GetJob) {
        let end = job.next + GET_SLICE;
        let peers = self.table.peers.in_slots(job.next, end).map(|p| PeerInfo {
            peer: self.peer_snapshot(p),
            preshared_key: p.preshared_key.clone(),
        });
        job.info.peers.extend(peers);
        job.next = end;
    }

    /// Sends a `get` whose every slot is copied its snapshot (true), or
    /// keeps it for the next round.
    fn answer_get_or_keep(&mut self, mut job: GetJob) -> bool {
        if job.next < self.table.peers.slots() {
            self.uapi_job = Some(UapiJob::Get(job));
            return false;
        }
        if let Some(reply) = job.reply.take() {
            // The server may have given up waiting; nothing to do then.
            let _ = reply.send(Reply {
                snapshot: Some(job.info),
                ..Reply::text(Zeroizing::default())
            });
        }
        true
    }

    /// Copies the next slice of a `wgdp show` document and sends the
    /// document once whole (true), or keeps it for the next round.
    fn answer_show_or_keep(&mut self, mut job: ShowJob, reply: Sender<Reply>) -> bool {
        let Some(show) = self.show_slice(&mut job) else {
            self.uapi_job = Some(UapiJob::Show(job, reply));
            return false;
        };
        // The server may have given up waiting; nothing to do then.
        let _ = reply.send(show_reply(show));
        true
    }

    /// Validates, then applies, a `set` in one go. Interface changes that
    /// need a restart (private key, listen port, fwmark) are refused
    /// unless they restate the current value.
    #[cfg(test)]
    fn apply_set(&mut self, set: Box<SetRequest>, now: Instant) -> Result<Persist, UapiError> {
        self.check_set(&set)?;
        let mut job = SetJob::new(set, None);
        while job.next < job.set.peers.len() {
            self.apply_slice(&mut job, now);
        }
        Ok(self.finish_set(&mut job, now))
    }

    /// Refuses a `set` that changes what needs a restart (private key,
    /// listen port) or that wgdp does not have (fwmark); the rest of a
    /// request was checked when it was parsed.
    fn check_set(&self, set: &SetRequest) -> Result<(), UapiError> {
        let refuse = |errno, message: &str| UapiError {
            errno,
            message: message.to_owned(),
        };
        if set
            .private_key
            .as_deref()
            .is_some_and(|k| k != &*self.private_key)
        {
            return Err(refuse(
                errno::EPERM,
                "changing the private key needs a restart",
            ));
        }
        if set.listen_port.is_some_and(|p| p != self.listen_port) {
            return Err(refuse(
                errno::EPERM,
                "changing the listen port needs a restart",
            ));
        }
        if set.fwmark.is_some_and(|f| f != 0) {
            return Err(refuse(errno::EINVAL, "wgdp has no fwmark"));
        }
        Ok(())
    }

    /// Applies the next [`SET_SLICE`] peers of a checked `set`.
    fn apply_slice(&mut self, job: &mut SetJob, now: Instant) {
        let end = (job.next + SET_SLICE).min(job.set.peers.len());
        for i in job.next..end {
            self.apply_peer(job, i, now);
        }
        job.next = end;
    }

    /// Applies peer `i` of a checked `set`.
    fn apply_peer(&mut self, job: &mut SetJob, i: usize, now: Instant) {
        // Read in place, never moved: the pre-shared keys are wiped where
        // they are when the request is dropped (a moved-out key would stay
        // in the freed buffer of the request's peers).
        let (set, ps) = (&job.set, &job.set.peers[i]);
        let key = PublicKey::from_bytes(ps.public_key);
        // A peer with our own public key is skipped, silently, as the
        // kernel's `set_peer` and wireguard-go do: one configuration can
        // then be pushed to every node of a mesh.
        if key == *self.identity.public_key() {
            return;
        }
        let existing = self.table.peers.by_key(&key);
        if ps.remove {
            if let Some(id) = existing {
                self.remove_peer(id, now);
                job.persist.removed.push(conf::PublicKey(ps.public_key));
            }
            return;
        }
        // replace_peers removes every peer first (wireguard-go and the
        // kernel): update_only then finds none to update.
        if ps.update_only && (existing.is_none() || set.replace_peers) {
            return;
        }
        job.named.insert(key);
        let id = match existing {
            Some(id) => id,
            None => {
                let id = self.add_peer(
                    NewPeer {
                        public_key: key,
                        preshared_key: None,
                        // Known now, so the owner can be predicted
                        // from it (RSS); applied again below.
                        endpoint: ps.endpoint,
                        persistent_keepalive: None,
                        lanes: 1,
                    },
                    now,
                );
                tracing::info!(peer = %conf::encode_key(&ps.public_key), slot = id, "peer added");
                id
            }
        };
        if set.replace_peers && existing.is_some() {
            // The peer gets exactly the listed configuration, as if
            // created anew: what the request leaves out is unset. Its
            // sessions and learned endpoint stay (no disruption).
            self.table.clear_prefixes(id);
            if let Some(peer) = self.table.peers.get_mut(id) {
                peer.handshake.set_preshared_key(None);
                peer.preshared_key = None;
                // The keepalive interval is unset below unless the
                // request restates it (an unchanged interval sends no
                // extra keepalive).
                peer.configured_endpoint = None;
            }
        }
        let Some(peer) = self.table.peers.get_mut(id) else {
            return;
        };
        let owner = peer.owner;
        if let Some(psk) = &ps.preshared_key {
            let psk = (**psk != [0u8; 32]).then(|| Zeroizing::new(**psk));
            peer.handshake.set_preshared_key(psk.as_deref().copied());
            peer.preshared_key = psk;
        }
        let restated = set.replace_peers && existing.is_some();
        if let Some(k) = ps.persistent_keepalive.or(restated.then_some(0)) {
            let k = (k != 0).then_some(k);
            peer.persistent_keepalive = k;
            peer.timers
                .set_persistent_keepalive(k.map(|s| Duration::from_secs(u64::from(s))), now);
        }
        if let Some(endpoint) = ps.endpoint {
            // A configured endpoint: sent to from the port's default
            // source until the peer reaches us (as the kernel clears
            // the endpoint's source when `wg set` gives one).
            peer.endpoint = Some(endpoint);
            peer.local = None;
            peer.configured_endpoint = Some(endpoint);
            self.commands.send(
                owner,
                Command::SetEndpoint {
                    id,
                    endpoint,
                    local: None,
                },
            );
        }
        if ps.replace_allowed_ips {
            self.table.clear_prefixes(id);
        }
        for &prefix in &ps.allowed_ips {
            if let Some(loser) = self.table.assign_prefix(prefix, id) {
                job.changed.push(loser);
            }
        }
        self.table.unassign_prefixes(id, &ps.removed_ips);
        job.changed.push(id);
    }

    /// Once every peer of a `set` is applied: `replace_peers` removes the
    /// peers it did not name, the changed peers are rendered for the
    /// write-back, and the workers get the new routes.
    fn finish_set(&mut self, job: &mut SetJob, now: Instant) -> Persist {
        let mut persist = std::mem::take(&mut job.persist);
        if job.set.replace_peers {
            let gone: Vec<PeerId> = self
                .table
                .peers
                .iter()
                .filter(|p| !job.named.contains(&p.public_key))
                .map(|p| p.id)
                .collect();
            for id in gone {
                if let Some(p) = self.table.peers.get(id) {
                    persist
                        .removed
                        .push(conf::PublicKey(*p.public_key.as_bytes()));
                }
                self.remove_peer(id, now);
            }
        }
        // Rendered once all changes are applied, so a prefix that moved
        // is written once.
        let mut seen = HashSet::new();
        for &id in &job.changed {
            if seen.insert(id) && self.table.peers.get(id).is_some() {
                persist.upserted.push(self.table.peer_conf(id));
            }
        }
        self.publish_routes();
        persist
    }
}

#[cfg(test)]
#[path = "live_tests.rs"]
pub(crate) mod tests;
