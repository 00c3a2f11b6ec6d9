//! Thread priorities: the control thread ahead of wgdp's helper threads
//! and of the processes that share its CPU, as an appliance would.
//!
//! The control thread answers every handshake, and on a small machine it
//! shares its CPU with the UAPI socket's thread (which renders a `wg show
//! dump` of 100k peers: 34 MB, about half a second of CPU) and with `wg`
//! itself. At equal priority the scheduler gives them equal shares, and a
//! new peer's handshake waits behind them (docs/scale.md, "Priorities").
//! So the control thread takes `dpdk.control_nice` (default
//! [`conf::DEFAULT_CONTROL_NICE`]) when it starts, and the UAPI socket's
//! thread [`HELPER_NICE_STEP`] more than the nice it started with.
//!
//! A nice value below the current one needs `CAP_SYS_NICE` (or
//! `RLIMIT_NICE`): without it the default is warned about and counted in
//! `thread_nice_refused` and the thread keeps its nice; a value the
//! operator set stops the start instead ([`PriorityError`]).
//!
//! Linux keeps a nice value per thread: `setpriority(PRIO_PROCESS, tid)`
//! changes that thread only, and a thread started later inherits its
//! creator's. So the control thread takes its nice after the helpers are
//! started, not before.

use std::io;

use crate::counters::{bump, ControlCounters};

/// How much lower than the process's the UAPI socket's thread runs: nice
/// 10 beside a control thread at -10 and the rest at 0.
pub const HELPER_NICE_STEP: i32 = 10;
/// The weakest nice value Linux has.
const NICE_MAX: i32 = 19;

/// A nice value the kernel refused.
#[derive(Debug, thiserror::Error)]
#[error("cannot set thread {tid}'s nice value to {nice}: {source} (lowering a nice value needs CAP_SYS_NICE or RLIMIT_NICE)")]
pub struct PriorityError {
    /// The thread.
    pub tid: i32,
    /// The nice value asked for.
    pub nice: i32,
    /// Why not.
    #[source]
    pub source: io::Error,
}

/// The calling thread's id (what `/proc/self/task/` lists).
pub fn current_tid() -> i32 {
    rustix::thread::gettid().as_raw_nonzero().get()
}

/// The calling thread's nice value.
pub fn current_nice() -> io::Result<i32> {
    Ok(rustix::process::getpriority_process(Some(
        rustix::thread::gettid(),
    ))?)
}

/// Sets the calling thread's nice value (that thread's only: Linux keeps
/// one per thread, and `PRIO_PROCESS` with a thread id names that one).
pub fn set_current_nice(nice: i32) -> Result<(), PriorityError> {
    let tid = rustix::thread::gettid();
    rustix::process::setpriority_process(Some(tid), nice).map_err(|e| PriorityError {
        tid: tid.as_raw_nonzero().get(),
        nice,
        source: e.into(),
    })
}

/// Gives the calling thread, the control thread, its nice value:
/// `configured` (`dpdk.control_nice`), else the default. A refused default
/// is warned about and counted in `thread_nice_refused`, and the thread
/// keeps its nice; a refused configured value is the error. Returns the
/// nice the thread now has.
pub fn raise_control_thread(
    configured: Option<i32>,
    counters: &ControlCounters,
) -> Result<i32, PriorityError> {
    apply(configured, counters, set_current_nice)
}

/// [`raise_control_thread`] with the setter given (the tests' refusals).
fn apply(
    configured: Option<i32>,
    counters: &ControlCounters,
    set: impl FnOnce(i32) -> Result<(), PriorityError>,
) -> Result<i32, PriorityError> {
    let nice = configured.unwrap_or(conf::DEFAULT_CONTROL_NICE);
    match set(nice) {
        Ok(()) => Ok(nice),
        Err(e) if configured.is_none() => {
            bump(&counters.thread_nice_refused);
            tracing::warn!(
                error = %e,
                "the control thread keeps its priority: handshakes may wait behind other work on its CPU (set dpdk.control_nice = 0 to silence this)"
            );
            Ok(current_nice().unwrap_or(0))
        }
        Err(e) => Err(e),
    }
}

/// Lowers the calling thread, one of wgdp's helpers (the UAPI socket's),
/// to [`HELPER_NICE_STEP`] above the nice it has, at most 19. Never needs
/// a privilege; a refusal all the same is warned about and counted in
/// `thread_nice_refused`. Returns the nice the thread now has.
pub fn lower_helper_thread(name: &str, counters: &ControlCounters) -> i32 {
    let now = current_nice().unwrap_or(0);
    let nice = (now + HELPER_NICE_STEP).min(NICE_MAX);
    match set_current_nice(nice) {
        Ok(()) => nice,
        Err(e) => {
            bump(&counters.thread_nice_refused);
            tracing::warn!(thread = name, error = %e, "a helper thread keeps its priority");
            now
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    /// A thread's nice value as the kernel shows it: field 19 of
    /// `/proc/self/task/TID/stat` (after the parenthesised name).
    fn proc_nice(tid: i32) -> i32 {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        // Fields from the 3rd (state): the 19th is the 17th of these.
        after_name.split(' ').nth(16).unwrap().parse().unwrap()
    }

    /// Drops `CAP_SYS_NICE` from the calling thread's effective set
    /// (capabilities are per thread), as a non-root wgdp runs.
    fn drop_cap_sys_nice() {
        use rustix::thread::{capabilities, set_capabilities, CapabilitySet};
        let mut caps = capabilities(None).unwrap();
        caps.effective.remove(CapabilitySet::SYS_NICE);
        set_capabilities(None, caps).unwrap();
    }

    /// Runs `f` on a thread of its own, so its nice and capabilities go
    /// with it.
    fn on_a_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| s.spawn(f).join().unwrap())
    }

    #[test]
    fn the_control_thread_takes_its_nice_and_only_that_thread() {
        // Root (or CAP_SYS_NICE) is needed to go below 0: the suite runs
        // as root, as wgdp does.
        let counters = ControlCounters::default();
        let main = proc_nice(current_tid());
        let (tid, got) = on_a_thread(|| {
            let got = raise_control_thread(None, &counters).unwrap();
            (
                current_tid(),
                (got, proc_nice(current_tid()), current_nice().unwrap()),
            )
        });
        assert_ne!(tid, current_tid());
        assert_eq!(got, (-10, -10, -10));
        let configured = on_a_thread(|| {
            let got = raise_control_thread(Some(-3), &counters).unwrap();
            (got, proc_nice(current_tid()))
        });
        assert_eq!(configured, (-3, -3));
        assert_eq!(proc_nice(current_tid()), main, "the caller's is unchanged");
        assert_eq!(counters.thread_nice_refused.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn without_cap_sys_nice_the_default_is_counted_and_a_configured_nice_is_an_error() {
        let counters = ControlCounters::default();
        let (default, configured, nice) = on_a_thread(|| {
            drop_cap_sys_nice();
            let before = proc_nice(current_tid());
            let default = raise_control_thread(None, &counters);
            let configured = raise_control_thread(Some(-5), &counters);
            assert_eq!(proc_nice(current_tid()), before, "left as it was");
            (default.map_err(|e| e.to_string()), configured, before)
        });
        assert_eq!(default, Ok(nice));
        let e = configured.unwrap_err();
        assert_eq!((e.nice, e.source.raw_os_error()), (-5, Some(13)));
        assert_eq!(counters.thread_nice_refused.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_refused_default_falls_back_and_a_refused_setting_does_not() {
        let counters = ControlCounters::default();
        let refuse = |nice| {
            Err(PriorityError {
                tid: 1,
                nice,
                source: io::Error::from_raw_os_error(1),
            })
        };
        let now = current_nice().unwrap();
        assert_eq!(apply(None, &counters, refuse).unwrap(), now);
        assert_eq!(counters.thread_nice_refused.load(Ordering::Relaxed), 1);
        let e = apply(Some(-7), &counters, refuse).unwrap_err();
        assert_eq!(e.nice, -7);
        assert_eq!(counters.thread_nice_refused.load(Ordering::Relaxed), 1);
        let mut asked = None;
        let set = |nice| {
            asked = Some(nice);
            Ok(())
        };
        assert_eq!(apply(None, &counters, set).unwrap(), -10);
        assert_eq!(asked, Some(-10));
    }

    #[test]
    fn a_helper_thread_runs_ten_below_the_nice_it_started_with_at_most_19() {
        let counters = ControlCounters::default();
        let (got, shown) = on_a_thread(|| {
            set_current_nice(0).unwrap();
            let got = lower_helper_thread("test", &counters);
            (got, proc_nice(current_tid()))
        });
        assert_eq!((got, shown), (10, 10));
        let (got, shown) = on_a_thread(|| {
            set_current_nice(15).unwrap();
            let got = lower_helper_thread("test", &counters);
            (got, proc_nice(current_tid()))
        });
        assert_eq!((got, shown), (19, 19));
        assert_eq!(counters.thread_nice_refused.load(Ordering::Relaxed), 0);
    }
}
