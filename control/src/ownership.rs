//! Which worker owns each peer, on the control thread's side.
//!
//! A new peer goes to the worker whose tunnel-port RX queue will receive
//! its endpoint's packets when the device lets that be predicted
//! ([`RssPredictor`]), else to the worker with the fewest peers. Then the
//! data path learns where the peer's packets really arrive and asks to
//! re-home it ([`WorkerEvent::ArrivesAt`]): the control thread starts one
//! move per peer at a time ([`Command::Release`] to the owner) and, when
//! the new owner reports [`WorkerEvent::Adopted`], points the peer's new
//! receiver indexes and the routes at it (see `dataplane::rehome`).
//!
//! [`WorkerEvent::ArrivesAt`]: dataplane::command::WorkerEvent::ArrivesAt
//! [`WorkerEvent::Adopted`]: dataplane::command::WorkerEvent::Adopted

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use dataplane::peer::PeerId;
use dataplane::route::PortNet;
use protocol::time::Instant;

use crate::rss::RssPredictor;

/// How long a move may go unanswered before it is asked for again.
const MOVE_RETRY: Duration = Duration::from_secs(1);

/// Owner choice and the moves in progress.
#[derive(Debug)]
pub struct Ownership {
    /// Peers per worker.
    load: Vec<usize>,
    /// RSS prediction on the tunnel port, where the device allows it.
    rss: Option<RssPredictor>,
    /// The tunnel port's addresses (the destination RSS hashes).
    tun: Option<PortNet>,
    /// Our UDP port.
    listen_port: u16,
    /// Peers being re-homed: to which worker, and when it was asked.
    moving: HashMap<PeerId, (usize, Instant)>,
}

impl Ownership {
    /// No peers yet, over `workers` workers.
    pub fn new(
        workers: usize,
        rss: Option<RssPredictor>,
        tun: Option<PortNet>,
        listen_port: u16,
    ) -> Self {
        Self {
            load: vec![0; workers.max(1)],
            rss,
            tun,
            listen_port,
            moving: HashMap::new(),
        }
    }

    /// The owner for a new peer: the predicted RX queue of its endpoint's
    /// packets, else the least-loaded worker (lowest index on a tie).
    pub fn choose(&self, endpoint: Option<SocketAddr>) -> usize {
        self.predict(endpoint)
            .unwrap_or_else(|| self.least_loaded())
    }

    /// The worker whose queue RSS delivers `endpoint`'s packets to.
    pub fn predict(&self, endpoint: Option<SocketAddr>) -> Option<usize> {
        let (rss, tun, from) = (self.rss.as_ref()?, self.tun.as_ref()?, endpoint?);
        let to = SocketAddr::new(tun.source_for(from.ip())?, self.listen_port);
        let q = usize::from(rss.queue(from, to)?);
        (q < self.load.len()).then_some(q)
    }

    fn least_loaded(&self) -> usize {
        let mut best = 0;
        for (w, &n) in self.load.iter().enumerate() {
            if n < self.load[best] {
                best = w;
            }
        }
        best
    }

    /// A peer now counts on `worker`.
    pub fn added(&mut self, worker: usize) {
        if let Some(n) = self.load.get_mut(worker) {
            *n += 1;
        }
    }

    /// Whether to ask now for peer `id` to move to worker `to`: yes when
    /// no move is under way, or one has gone unanswered for
    /// `MOVE_RETRY` (its `Adopted` event may have met a full event
    /// queue), and then to the worker asked for first. Returns the worker
    /// to ask for, noted as asked at `now`.
    pub fn ask_move(&mut self, id: PeerId, to: usize, now: Instant) -> Option<usize> {
        let to = match self.moving.get(&id) {
            Some(&(_, asked)) if !asked.has_expired(MOVE_RETRY, now) => return None,
            Some(&(pending, _)) => pending,
            None => to,
        };
        self.moving.insert(id, (to, now));
        Some(to)
    }

    /// Peer `id`'s move is over (a worker adopted it).
    pub fn settled(&mut self, id: PeerId) {
        self.moving.remove(&id);
    }

    /// A peer no longer counts on `worker`.
    pub fn removed(&mut self, id: PeerId, worker: usize) {
        self.moving.remove(&id);
        if let Some(n) = self.load.get_mut(worker) {
            *n = n.saturating_sub(1);
        }
    }

    /// Peers per worker.
    pub fn load(&self) -> &[usize] {
        &self.load
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rss::HashFields;
    use dataplane::route::IfAddr;

    #[test]
    fn least_loaded_without_prediction() {
        let mut o = Ownership::new(3, None, None, 51820);
        let ep = Some("198.51.100.7:51820".parse().expect("addr"));
        let mut got = Vec::new();
        for _ in 0..6 {
            let w = o.choose(ep);
            o.added(w);
            got.push(w);
        }
        assert_eq!(got, [0, 1, 2, 0, 1, 2]);
        o.removed(0, 1);
        o.removed(1, 1);
        assert_eq!(o.choose(None), 1);
        assert_eq!(o.load(), [2, 0, 2]);
    }

    #[test]
    fn predicted_queue_wins_where_rss_is_known() {
        let key: Vec<u8> = (0..40).map(|i| (i * 37 + 11) as u8).collect();
        let reta: Vec<u16> = (0..64).map(|i| (i % 2) as u16).collect();
        let both = HashFields::AddressesAndPorts;
        let rss = RssPredictor::new(key, both, both, reta).expect("predictor");
        let tun = PortNet {
            mac: [2, 0, 0, 0, 0, 1],
            addresses: vec![IfAddr {
                addr: "192.0.2.1".parse().expect("addr"),
                prefix_len: 24,
            }],
            gateway_v4: Some("192.0.2.254".parse().expect("addr")),
            gateway_v6: None,
            vlan: None,
        };
        let mut o = Ownership::new(2, Some(rss.clone()), Some(tun), 51820);
        // Load worker 0 and 1 unevenly: prediction ignores load.
        o.added(0);
        o.added(0);
        let local: SocketAddr = "192.0.2.1:51820".parse().expect("addr");
        let mut seen = [false; 2];
        for port in 40000..40016u16 {
            let ep: SocketAddr = SocketAddr::new("203.0.113.9".parse().expect("addr"), port);
            let q = usize::from(rss.queue(ep, local).expect("queue"));
            assert_eq!(o.choose(Some(ep)), q, "{ep}");
            seen[q] = true;
        }
        assert_eq!(seen, [true, true], "both queues predicted");
        assert_eq!(o.choose(None), 1, "no endpoint: least loaded");
        let v6: SocketAddr = "[2001:db8::1]:1".parse().expect("addr");
        assert_eq!(o.predict(Some(v6)), None, "no IPv6 address to hash against");
    }
}
