//! The cookie checks of a burst at once, as the handshake gate runs them
//! under a flood (whitepaper section 5.3 and 5.4.7): the mac1s of up to
//! 16 messages in one SIMD pass under our mac1 key, and under load their
//! cookies (one key, the secret's) and mac2s (a key per lane, each
//! message's cookie) 16 at a time too. Each verdict is the one the
//! one-message checks of [`CookieChecker`] give.

use std::net::SocketAddr;

use zeroize::Zeroizing;

use super::{mac1_matches, mac1_offset, source_bytes, CookieChecker, Mac2Check};
use crate::constants::COOKIE_LEN;
use crate::crypto::{self, MacJob, MAC_LANES};
use crate::messages::{mac_ranges, MessageType};

impl CookieChecker {
    /// [`check_mac1`](Self::check_mac1) of a burst's messages at once:
    /// `ok[i]` is whether `msgs[i]` passes (up to `ok.len()` messages).
    /// The mac1s of up to [`MAC_LANES`] messages are computed in one SIMD
    /// pass ([`crypto::MacKey::mac_many`]): the handshake gate's cost per
    /// message under a flood.
    pub fn check_mac1_many(&self, msgs: &[&[u8]], ok: &mut [bool]) {
        let n = msgs.len().min(ok.len());
        for (msgs, ok) in msgs[..n].chunks(MAC_LANES).zip(ok.chunks_mut(MAC_LANES)) {
            let mut jobs = [MacJob::default(); MAC_LANES];
            // Each job's message and where its mac1 lies.
            let mut of = [(0usize, 0usize); MAC_LANES];
            let mut queued = 0;
            for (i, msg) in msgs.iter().enumerate() {
                ok[i] = false;
                let at = MessageType::of(msg).ok().and_then(|_| mac1_offset(msg));
                if let Some(at) = at {
                    jobs[queued] = MacJob::new(&msg[..at]);
                    of[queued] = (i, at);
                    queued += 1;
                }
            }
            self.mac1_key.mac_many(&mut jobs[..queued]);
            for (job, &(i, at)) in jobs[..queued].iter().zip(&of) {
                ok[i] = mac1_matches(msgs[i], at, &job.mac);
            }
        }
    }

    /// For a burst of handshake messages and their sources (`msgs`), each
    /// one's cookie under the current secret and whether its mac2 is the
    /// one that cookie gives: what [`mac2_or_reply`](Self::mac2_or_reply)
    /// computes first, here with the cookies 16 per SIMD pass (one key,
    /// the secret's) and the mac2s 16 per pass (a key per lane, the
    /// cookies). `out[i]` is `None` for a message that is not a handshake
    /// message; nothing is written before there is a secret (up to
    /// `out.len()` messages).
    pub fn mac2_checks(&self, msgs: &[(&[u8], SocketAddr)], out: &mut [Option<Mac2Check>]) {
        let Some((_, secret)) = self.secret.as_ref() else {
            return;
        };
        let n = msgs.len().min(out.len());
        for (msgs, out) in msgs[..n].chunks(MAC_LANES).zip(out.chunks_mut(MAC_LANES)) {
            // The cookies: MAC(R_m, address || port), 18 bytes at most.
            let mut sources = [[0u8; 18]; MAC_LANES];
            let mut jobs = [MacJob::default(); MAC_LANES];
            for ((bytes, job), (_, src)) in sources.iter_mut().zip(&mut jobs).zip(msgs) {
                let len = source_bytes(*src, bytes);
                *job = MacJob::new(&bytes[..len]);
            }
            secret.mac_many(&mut jobs[..msgs.len()]);
            let mut cookies = Zeroizing::new([[0u8; COOKIE_LEN]; MAC_LANES]);
            for (c, job) in cookies.iter_mut().zip(&mut jobs) {
                *c = job.mac;
                job.mac = [0; COOKIE_LEN];
            }
            // The mac2s, each under its message's cookie.
            let mut mac2s = [MacJob::default(); MAC_LANES];
            for (job, (msg, _)) in mac2s.iter_mut().zip(msgs) {
                if let Some((_, mac2)) = mac_ranges(msg) {
                    *job = MacJob::new(&msg[..mac2.start]);
                }
            }
            crypto::mac_many_keyed(&cookies[..msgs.len()], &mut mac2s[..msgs.len()]);
            for (i, (msg, _)) in msgs.iter().enumerate() {
                out[i] = mac_ranges(msg).map(|(_, mac2)| Mac2Check {
                    cookie: Zeroizing::new(cookies[i]),
                    matches: crypto::constant_time_eq(&mac2s[i].mac, &msg[mac2]),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::super::tests::{message, setup};
    use super::super::UnderLoad;
    use super::*;
    use crate::messages::CookieReply;
    use crate::time::Instant;

    /// A burst of 37 messages (more than one SIMD pass) checked at once:
    /// valid initiations and responses pass; a flipped bit, a truncated
    /// message, a cookie reply and a data message fail; each verdict is
    /// [`CookieChecker::check_mac1`]'s; `ok` past the messages is untouched.
    #[test]
    fn check_mac1_many_agrees_with_check_mac1_on_a_mixed_burst() {
        let mut s = setup();
        let t0 = Instant::from_secs(1);
        let mut response = [0u8; 92];
        response[0] = 2;
        s.jar.add_macs(&mut response, t0);
        let mut msgs: Vec<Vec<u8>> = Vec::new();
        for i in 0..37u32 {
            let mut m = message(&mut s, i, t0).to_vec();
            match i % 6 {
                0 => m[4 + (i as usize * 7) % 112] ^= 1 << (i % 8),
                1 => m.truncate(100),
                2 => m = response.to_vec(),
                3 => m = vec![3; 64],
                4 => m = [&4u32.to_le_bytes()[..], &[0u8; 28]].concat(),
                _ => {}
            }
            msgs.push(m);
        }
        let views: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        let mut ok = [true; 40];
        s.checker.check_mac1_many(&views, &mut ok);
        for (i, m) in views.iter().enumerate() {
            let want = matches!(i % 6, 2 | 5);
            assert_eq!(ok[i], want, "message {i}");
            assert_eq!(s.checker.check_mac1(m).is_ok(), want, "message {i}");
        }
        assert_eq!(ok[37..], [true; 3], "past the messages");
        // Fewer verdicts than messages: only the first ones are checked.
        let mut two = [false; 2];
        s.checker.check_mac1_many(&views, &mut two);
        assert_eq!(two, [false, false]);
        s.checker.check_mac1_many(&views[2..], &mut two);
        assert_eq!(two, [true, false]);
    }

    /// A burst of 20 messages' mac2 checks at once (more than one SIMD
    /// pass): a message with the cookie's mac2 from its own source matches,
    /// the same from another port or an IPv6 source does not, one without
    /// mac2 does not, a truncated one gets none; each agrees with
    /// check_mac2; before a secret nothing is written.
    #[test]
    fn mac2_checks_agree_with_check_mac2_on_a_mixed_burst() {
        let mut s = setup();
        let t0 = Instant::from_secs(10);
        let mut out: Vec<Option<Mac2Check>> = (0..21).map(|_| None).collect();
        let none_yet = message(&mut s, 0, t0);
        s.checker.mac2_checks(&[(&none_yet, s.src)], &mut out);
        assert!(
            out.iter().all(Option::is_none),
            "no secret: nothing written"
        );
        s.checker.rotate(t0, &mut s.rng).expect("secret");
        let reply = s
            .checker
            .reply(&none_yet, s.src, &mut s.rng)
            .expect("reply");
        let view = CookieReply::new_checked(&reply[..]).expect("valid reply");
        s.jar.consume_reply(&view, t0).expect("cookie");
        let with_mac2 = message(&mut s, 1, t0);
        let mut other = s.src;
        other.set_port(4445);
        let v6: SocketAddr = "[2001:db8::9]:4444".parse().expect("literal");
        let cases: [(&[u8], SocketAddr, Option<bool>); 5] = [
            (&with_mac2, s.src, Some(true)),
            (&with_mac2, other, Some(false)),
            (&with_mac2, v6, Some(false)),
            (&none_yet, s.src, Some(false)),
            (&with_mac2[..100], s.src, None),
        ];
        let msgs: Vec<(&[u8], SocketAddr)> =
            (0..20).map(|i| (cases[i % 5].0, cases[i % 5].1)).collect();
        s.checker.mac2_checks(&msgs, &mut out);
        for (i, (msg, src)) in msgs.iter().enumerate() {
            let got = out[i].as_ref().map(|c| c.matches);
            assert_eq!(got, cases[i % 5].2, "message {i}");
            if got.is_some() {
                assert_eq!(got, Some(s.checker.check_mac2(msg, *src)), "message {i}");
            }
        }
        assert!(out[20].is_none(), "past the messages");
        // A checked message without a valid mac2 gets a reply its sender
        // takes (the message from the other port: the jar's last mac1).
        let check = out[1].take().expect("checked");
        let Ok(UnderLoad::Reply(r)) = s
            .checker
            .mac2_or_reply_checked(&with_mac2, &check, &mut s.rng)
        else {
            panic!("no mac2: a reply");
        };
        let view = CookieReply::new_checked(&r[..]).expect("valid reply");
        s.jar
            .consume_reply(&view, t0)
            .expect("the initiator takes its cookie");
    }
}
