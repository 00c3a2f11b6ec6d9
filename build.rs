//! Build metadata for `wgdp --version`: the git commit and the DPDK version
//! the binary was built against.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
    let git = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let dpdk = pkg_config::Config::new()
        .cargo_metadata(false)
        .probe("libdpdk")
        .map(|lib| lib.version)
        .unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=WGDP_GIT_COMMIT={git}");
    println!("cargo:rustc-env=WGDP_DPDK_VERSION={dpdk}");
}
