//! Compiles the C shim over ipsec-mb's job API (its entry points are
//! function pointers in `IMB_MGR`, reached through macros) and links
//! `libIPSec_MB` (Debian: `libipsec-mb-dev`, 1.3 or newer).

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=shim/imb_shim.c");
    let header = [
        "/usr/include/intel-ipsec-mb.h",
        "/usr/local/include/intel-ipsec-mb.h",
    ];
    if !header.iter().any(|h| Path::new(h).exists()) {
        println!(
            "cargo:warning=intel-ipsec-mb.h not found: install libipsec-mb-dev (scripts/install.sh)"
        );
    }
    cc::Build::new()
        .file("shim/imb_shim.c")
        .opt_level(3)
        .warnings(true)
        .compile("wgdp_imb_shim");
    println!("cargo:rustc-link-lib=IPSec_MB");
}
