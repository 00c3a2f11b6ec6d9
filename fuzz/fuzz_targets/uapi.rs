//! The UAPI request parser (`control::uapi::proto::parse`), fed requests
//! split into lines as the socket server splits them. Checked: nothing
//! panics; a refusal carries a positive errno; a parsed `set` holds only
//! values the tunnel table accepts (prefix lengths in range, no port 0).
#![no_main]

use control::uapi::proto::{parse, render_errno, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines: Vec<&str> = text.split('\n').collect();
    match parse(&lines) {
        Ok(Request::Set(set)) => {
            for peer in &set.peers {
                for prefix in peer.allowed_ips.iter().chain(&peer.removed_ips) {
                    let max = if prefix.addr().is_ipv4() { 32 } else { 128 };
                    assert!(prefix.prefix_len() <= max);
                    // Canonical: the text form parses back to itself.
                    assert_eq!(prefix.to_string().parse().ok(), Some(*prefix));
                }
                if let Some(e) = peer.endpoint {
                    assert_ne!(e.port(), 0);
                }
            }
        }
        Ok(Request::Get | Request::WgdpShow { .. }) => assert_eq!(lines.len(), 1),
        Err(e) => {
            assert!(e.errno > 0, "errno {}", e.errno);
            assert!(render_errno(e.errno).ends_with("\n\n"));
        }
    }
});
