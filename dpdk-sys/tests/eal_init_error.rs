//! A failed EAL init returns DPDK's own explanation. Its own test binary:
//! EAL state after a failed init must not leak into other tests.

use dpdk_sys::rte::{Eal, EalError};

#[test]
fn eal_init_failure_carries_dpdks_message() {
    let err = Eal::init([
        "--no-huge",
        "--no-pci",
        "--lcores=0@(0-1)",
        "--proc-type=bogus",
    ])
    .expect_err("bogus process type must fail");
    let EalError::Init { errno, ref log, .. } = err else {
        panic!("expected EalError::Init, got {err:?}");
    };
    assert_ne!(errno, 0);
    let text = err.to_string();
    assert!(text.starts_with("rte_eal_init failed"), "{text}");
    assert!(
        log.to_lowercase().contains("proc-type") || log.contains("process type"),
        "DPDK's own words about the bad argument: {log:?}"
    );
}

#[test]
fn nul_in_argument_is_refused_before_dpdk() {
    match Eal::init(["bad\0arg"]) {
        Err(EalError::BadArgument(a)) => assert_eq!(a, "bad\0arg"),
        other => panic!("expected BadArgument, got {other:?}"),
    }
}
