//! The timers' slices: the control loop looks at [`TIMER_SLICE`] peer
//! slots a round, and each slice fires exactly the timers of its peers
//! that are due.

use std::time::Duration;

use protocol::crypto::PublicKey;

use super::live::tests::{ask, control, hex, keepalives, ports};
use super::TIMER_SLICE;

#[test]
fn a_timer_slice_fires_exactly_the_due_timers_of_its_slots() {
    let p = ports();
    let (mut c, commands) = control(&p);
    // The two configured peers' first keepalives, out of the way.
    c.timer_round(c.clock.now());
    let n = 2 * TIMER_SLICE + 10;
    let key = |i: usize| {
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(&(i as u32).to_le_bytes());
        key[31] = 0x40;
        key
    };
    // One peer in eight has a persistent keepalive; nothing of the others
    // is due (and a slice's keepalives fit the worker's command channel).
    let keeps = |i: usize| i % 8 == 3;
    let mut text = String::from("set=1\n");
    for i in 0..n {
        text.push_str(&format!(
            "public_key={}\nendpoint=192.0.2.9:51820\npersistent_keepalive_interval={}\n",
            hex(&key(i)),
            if keeps(i) { 5 } else { 0 }
        ));
    }
    assert_eq!(ask(&mut c, text.trim_end()), "errno=0\n\n");
    while commands.try_recv().is_ok() {}
    // The oracle: the peers with a keepalive whose slot is in `slots`
    // (a peer's id is its slot).
    let ids: Vec<(usize, u32)> = (0..n)
        .map(|i| {
            let id = c.table.peers.by_key(&PublicKey::from_bytes(key(i)));
            (i, id.expect("added"))
        })
        .collect();
    assert!(c.table.peers.slots() > 2 * TIMER_SLICE);
    let due_in = |slots: std::ops::Range<usize>| {
        let mut due: Vec<u32> = ids
            .iter()
            .filter(|&&(i, id)| keeps(i) && slots.contains(&(id as usize)))
            .map(|&(_, id)| id)
            .collect();
        due.sort_unstable();
        due
    };
    let sorted = |mut v: Vec<u32>| {
        v.sort_unstable();
        v
    };
    // Each interval armed by the set is due a moment later.
    let now = c.clock.now() + Duration::from_millis(1);
    c.timer_next = 0;
    let mut fired = 0;
    for (k, last) in [(0, false), (1, false), (2, true)] {
        let slots = k * TIMER_SLICE..(k + 1) * TIMER_SLICE;
        assert_eq!(c.timer_slice(now), last, "slice {k} ends the pass: {last}");
        let (got, want) = (sorted(keepalives(&commands)), due_in(slots));
        let extra: Vec<_> = got.iter().filter(|id| !want.contains(id)).collect();
        let missing: Vec<_> = want.iter().filter(|id| !got.contains(id)).collect();
        assert!(
            extra.is_empty() && missing.is_empty(),
            "slice {k}: fired {extra:?} not due, missed {missing:?}"
        );
        fired += got.len();
    }
    assert_eq!(fired, (0..n).filter(|&i| keeps(i)).count());
    assert_eq!(c.timer_next, 0, "the next pass starts at the first slot");
    // The next pass: each keepalive was sent once, nothing is due again
    // (the next waits for a packet to the peer, which re-arms it).
    for k in 0..3 {
        assert_eq!(c.timer_slice(now + Duration::from_secs(30)), k == 2);
        assert_eq!(keepalives(&commands), Vec::<u32>::new(), "pass 2, slice {k}");
    }
}
