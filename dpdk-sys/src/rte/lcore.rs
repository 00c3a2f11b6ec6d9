//! Running closures on worker lcores.

use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::{Eal, RteError};
use crate::ffi;

/// How often a waiting caller checks whether a job has finished.
const WAIT_POLL: std::time::Duration = std::time::Duration::from_millis(1);

/// A closure to run on one worker lcore.
pub type Job<'a, T> = Box<dyn FnOnce() -> T + Send + 'a>;

/// Why a job did not produce a value.
#[derive(Debug, thiserror::Error)]
pub enum LcoreError {
    /// The lcore could not be launched (not a worker, not enabled, busy).
    #[error(transparent)]
    Launch(#[from] RteError),
    /// The job panicked; the payload's message if it was a string.
    #[error("job on lcore {lcore} panicked: {message}")]
    Panicked {
        /// The lcore that ran the job.
        lcore: u32,
        /// The panic message.
        message: String,
    },
}

struct Slot<'a, T> {
    job: Option<Job<'a, T>>,
    out: Option<std::thread::Result<T>>,
}

unsafe extern "C" fn trampoline<T>(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `Slot<T>` that `launch_and_join` keeps alive and
    // does not touch until `rte_eal_wait_lcore` has returned for this lcore.
    let slot = unsafe { &mut *arg.cast::<Slot<'_, T>>() };
    if let Some(job) = slot.job.take() {
        slot.out = Some(catch_unwind(AssertUnwindSafe(job)));
    }
    0
}

/// Launches each job on its worker lcore, waits for all of them, and returns
/// their results in the same order. Because nothing returns before every
/// launched job has finished, jobs may borrow from the caller (ports,
/// queues, counters).
pub fn launch_and_join<'a, T: Send>(
    eal: &Eal,
    jobs: Vec<(u32, Job<'a, T>)>,
) -> Vec<Result<T, LcoreError>> {
    launch_run_join(eal, jobs, || ()).1
}

/// As [`launch_and_join`], running `on_main` on the calling (main lcore)
/// thread while the jobs run; the jobs are waited for once it returns.
/// DPDK waits for an lcore by spinning: `on_main` must make the jobs end
/// before it returns (a stop flag), and while it runs nothing spins on the
/// main lcore's CPU. If it panics, the jobs are still waited for (they may
/// borrow what the unwinding frees) before the panic goes on; `on_main`
/// must then make them end too (set the stop flag from a guard's `Drop`).
pub fn launch_run_join<'a, T: Send, R>(
    _eal: &Eal,
    jobs: Vec<(u32, Job<'a, T>)>,
    on_main: impl FnOnce() -> R,
) -> (R, Vec<Result<T, LcoreError>>) {
    let mut slots: Vec<(u32, Box<Slot<'a, T>>)> = jobs
        .into_iter()
        .map(|(lcore, job)| {
            (
                lcore,
                Box::new(Slot {
                    job: Some(job),
                    out: None,
                }),
            )
        })
        .collect();
    let mut launched = Vec::with_capacity(slots.len());
    for (lcore, slot) in slots.iter_mut() {
        let arg = (&mut **slot as *mut Slot<'a, T>).cast::<c_void>();
        // SAFETY: the slot outlives the job: it is waited for below.
        let ret = unsafe { ffi::rte_eal_remote_launch(Some(trampoline::<T>), arg, *lcore) };
        launched.push(if ret == 0 {
            Ok(())
        } else {
            Err(RteError::from_ret(
                format!("rte_eal_remote_launch(lcore {lcore})"),
                ret,
            ))
        });
    }
    let main = std::panic::catch_unwind(std::panic::AssertUnwindSafe(on_main));
    for ((lcore, _), ok) in slots.iter().zip(&launched) {
        if ok.is_ok() {
            // Sleep while the job runs: `rte_eal_wait_lcore` spins, which
            // would take a CPU from the workers where lcores share cores.
            // SAFETY: reads the state of an lcore launched above.
            while unsafe { ffi::rte_eal_get_lcore_state(*lcore) } == ffi::RUNNING {
                std::thread::sleep(WAIT_POLL);
            }
            // SAFETY: waits for the job launched above on this lcore.
            unsafe { ffi::rte_eal_wait_lcore(*lcore) };
        }
    }
    let main = match main {
        Ok(r) => r,
        Err(payload) => std::panic::resume_unwind(payload),
    };
    let results = slots
        .into_iter()
        .zip(launched)
        .map(|((lcore, slot), launched)| {
            launched?;
            match slot.out {
                Some(Ok(v)) => Ok(v),
                Some(Err(payload)) => Err(LcoreError::Panicked {
                    lcore,
                    message: panic_message(payload.as_ref()),
                }),
                None => Err(LcoreError::Panicked {
                    lcore,
                    message: "job did not run".into(),
                }),
            }
        })
        .collect();
    (main, results)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".into()
    }
}
