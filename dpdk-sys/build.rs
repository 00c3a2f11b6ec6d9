//! Generates the DPDK bindings and compiles the inline-function shim.
//!
//! DPDK is found with pkg-config (`libdpdk`, 22.11 or newer). Its cflags are
//! passed unchanged to both bindgen (libclang) and the C compiler for the
//! shim, so the bindings see exactly the configuration (`rte_config.h`,
//! `-march`) that DPDK itself was built for. Link flags are what pkg-config
//! says, plus `rte_net_ring`: pkg-config leaves driver libraries out because
//! EAL loads them as plugins, but `rte_eth_from_rings` is a driver API that
//! the crate calls directly. (`rte_ip_frag`, for fragmentation and
//! reassembly, is a library pkg-config does list.)

use std::env;
use std::path::PathBuf;
use std::process::Command;

const DEBIAN_HINT: &str = "on Debian 12: apt-get install libdpdk-dev pkg-config \
     clang libclang-dev (or run scripts/install.sh)";

fn main() {
    println!("cargo:rerun-if-changed=shim/wgdp_shim.c");
    println!("cargo:rerun-if-changed=shim/wgdp_shim.h");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let lib = match pkg_config::Config::new()
        .atleast_version("22.11")
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => fail(&format!(
            "DPDK 22.11 or newer was not found by pkg-config ({e})"
        )),
    };
    let cflags = dpdk_cflags();

    // The one driver library whose API is called directly (see module doc).
    println!("cargo:rustc-link-lib=dylib=rte_net_ring");
    for dir in &lib.link_paths {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }

    let mut cc = cc::Build::new();
    cc.file("shim/wgdp_shim.c").warnings(false).opt_level(3);
    for flag in &cflags {
        cc.flag(flag);
    }
    cc.compile("wgdp_shim");

    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let builder = bindgen::Builder::default()
        .header(manifest.join("shim/wgdp_shim.h").to_string_lossy())
        .clang_args(&cflags)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .allowlist_function("wgdp_.*")
        .allowlist_var("wgdp_.*")
        .allowlist_function("rte_eal_(init|cleanup|remote_launch|wait_lcore|get_lcore_state|get_runtime_dir)")
        .allowlist_function("rte_(get_next_lcore|get_main_lcore|socket_id|get_tsc_hz|strerror|openlog_stream)")
        .allowlist_function("rte_dev_probe")
        .allowlist_function("rte_pktmbuf_(pool_create|free_bulk)")
        .allowlist_function("rte_mempool_free")
        .allowlist_function("rte_ip_frag_(table_create|table_destroy|free_death_row|table_del_expired_entries)")
        .allowlist_function("rte_ipv(4|6)_frag_reassemble_packet|rte_ipv4_fragment_copy_nonseg_packet")
        .allowlist_type("rte_ip_frag_death_row")
        .allowlist_var("RTE_LIBRTE_IP_FRAG_MAX_FRAG")
        .allowlist_function("rte_eth_(dev_info_get|dev_configure|rx_queue_setup|tx_queue_setup|dev_start|dev_stop|dev_close|macaddr_get|link_get_nowait|stats_get|stats_reset|xstats_get|xstats_get_names|dev_rss_hash_conf_get|dev_rss_reta_query|dev_get_mtu|dev_get_port_by_name|dev_socket_id|promiscuous_enable|from_rings|dev_adjust_nb_rx_tx_desc)")
        .allowlist_function("rte_ring_(create|free)")
        .allowlist_function("rte_flow_(validate|create|destroy)")
        .allowlist_type("rte_flow_(attr|item|item_type|item_ipv4|item_ipv6|action|action_type|action_queue|error)")
        .allowlist_function("rte_telemetry_register_cmd")
        .allowlist_function("rte_tel_data_(start_dict|start_array|string|add_dict_u64|add_dict_string|add_dict_container|add_array_u64|add_array_string|alloc|free)")
        .allowlist_var("RTE_TEL_MAX_(STRING_LEN|SINGLE_STRING_LEN|DICT_ENTRIES|ARRAY_ENTRIES)")
        .allowlist_function("rte_cryptodev_(get_dev_id|count|socket_id|configure|start|stop|close|queue_pair_setup|info_get|sym_capability_get|sym_session_pool_create|sym_get_private_session_size|sym_session_create|sym_session_free|sym_cpu_crypto_process|sym_capability_check_aead|name_get)")
        .allowlist_function("rte_crypto_op_pool_create")
        .allowlist_type("rte_crypto_(op|op_status|sym_op|sym_xform|aead_xform|sym_vec|sgl|vec|va_iova_ptr|sym_ofs)")
        .allowlist_type("rte_cryptodev_(config|qp_conf|info|sym_capability_idx|symmetric_capability)")
        .allowlist_var("RTE_CRYPTODEV_FF_(SYMMETRIC_CRYPTO|SYM_CPU_CRYPTO|SYM_OPERATION_CHAINING|IN_PLACE_SGL|HW_ACCELERATED)")
        .allowlist_var("RTE_CRYPTO_(OP_TYPE|OP_STATUS|SYM_XFORM|AEAD)_.*")
        .allowlist_type("rte_mbuf")
        .allowlist_type("rte_eth_(conf|dev_info|rxconf|txconf|link|stats|xstat|xstat_name|rss_conf|rss_reta_entry64)")
        .allowlist_type("rte_ether_addr")
        .allowlist_var("RTE_ETH_(RSS|RX_OFFLOAD|TX_OFFLOAD|LINK|MQ|RETA)_.*")
        .allowlist_var("RTE_MBUF_(DEFAULT_BUF_SIZE|DEFAULT_DATAROOM)")
        .allowlist_var("RTE_PKTMBUF_HEADROOM")
        .allowlist_var("RTE_MAX_(LCORE|ETHPORTS)")
        .allowlist_var("RTE_ETH_XSTATS_NAME_SIZE|RTE_RING_NAMESIZE|RTE_MEMPOOL_NAMESIZE")
        .allowlist_var("RING_F_(SP_ENQ|SC_DEQ)|SOCKET_ID_ANY")
        .allowlist_var("RTE_MBUF_F_(RX|TX)_.*")
        .rustified_enum("rte_eth_rx_mq_mode|rte_eth_tx_mq_mode")
        .constified_enum_module("rte_crypto_(op_type|op_status|sym_xform_type|aead_algorithm|aead_operation)")
        .constified_enum_module("rte_tel_value_type")
        .derive_default(true)
        .layout_tests(true)
        .generate_comments(false)
        .prepend_enum_name(false);

    // bindgen loads libclang at run time and panics when it is missing:
    // turn that into the same actionable message as a missing DPDK.
    let generated =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || builder.generate()));
    let bindings = match generated {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => fail(&format!("bindgen could not parse the DPDK headers: {e}")),
        Err(_) => fail("bindgen could not load libclang"),
    };
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings.rs to OUT_DIR");
}

/// The compiler flags `pkg-config --cflags libdpdk` prints, split on spaces.
fn dpdk_cflags() -> Vec<String> {
    let pkg_config = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".into());
    let out = match Command::new(&pkg_config)
        .args(["--cflags", "libdpdk"])
        .output()
    {
        Ok(out) if out.status.success() => out,
        Ok(out) => fail(&format!(
            "pkg-config --cflags libdpdk failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => fail(&format!("cannot run {pkg_config}: {e}")),
    };
    // `-include rte_config.h` is two words that must stay together and in
    // order, which a plain split keeps.
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn fail(what: &str) -> ! {
    eprintln!("\nerror: {what}\n  {DEBIAN_HINT}\n");
    println!("cargo:warning={what}; {DEBIAN_HINT}");
    std::process::exit(1);
}
