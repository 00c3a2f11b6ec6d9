//! The kernel exception interfaces: a `net_tap` device per port whose
//! kernel side carries the port's MAC and addresses, so that the kernel
//! answers for the concentrator itself (ping, ssh, ...) on both ports.

use std::process::Command;

use conf::Cidr;

/// Why a kernel interface could not be configured.
#[derive(Debug, thiserror::Error)]
#[error("configuring kernel interface {iface}: `ip {args}` failed: {why}")]
pub struct TapError {
    iface: String,
    args: String,
    why: String,
}

/// The DPDK device string of the exception TAP `iface` of port `n`.
pub fn devargs(n: usize, iface: &str) -> String {
    format!("net_tap_wgdp{n},iface={iface}")
}

/// Formats a MAC address as `02:00:00:00:00:01`.
pub fn mac_string(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn ip(iface: &str, args: &[&str]) -> Result<(), TapError> {
    let err = |why: String| TapError {
        iface: iface.to_owned(),
        args: args.join(" "),
        why,
    };
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| err(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(err(String::from_utf8_lossy(&out.stderr).trim().to_owned()))
    }
}

/// Gives the kernel side of an exception TAP the port's MAC, MTU and
/// addresses, and brings it up.
pub fn configure(iface: &str, mac: [u8; 6], mtu: u16, addresses: &[Cidr]) -> Result<(), TapError> {
    let mac = mac_string(mac);
    let mtu = mtu.to_string();
    ip(
        iface,
        &["link", "set", "dev", iface, "address", &mac, "mtu", &mtu],
    )?;
    for a in addresses {
        let a = a.to_string();
        if a.contains(':') {
            ip(iface, &["addr", "replace", &a, "dev", iface, "nodad"])?;
        } else {
            ip(iface, &["addr", "replace", &a, "dev", iface])?;
        }
    }
    ip(iface, &["link", "set", "dev", iface, "up"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(mac_string([2, 0, 0xab, 0, 0, 1]), "02:00:ab:00:00:01");
        assert_eq!(devargs(1, "wgdp-pt"), "net_tap_wgdp1,iface=wgdp-pt");
    }
}
