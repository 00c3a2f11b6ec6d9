//! The control thread's command channels to the workers (see
//! [`Command`]): one bounded channel per worker, applied by the worker
//! between bursts. A command a full channel refuses is counted
//! (`command_drops`), never waited for: the control thread must not block
//! on a busy worker.

use std::sync::Arc;

use crossbeam_channel::Sender;
use dataplane::command::Command;

use crate::counters::{bump, ControlCounters};

/// The command channels to the workers, by worker index.
#[derive(Debug)]
pub(crate) struct WorkerCommands {
    senders: Vec<Sender<Command>>,
    counters: Arc<ControlCounters>,
}

impl WorkerCommands {
    /// The channels `senders` (by worker index), counting refusals in
    /// `counters`.
    pub(crate) fn new(senders: Vec<Sender<Command>>, counters: Arc<ControlCounters>) -> Self {
        Self { senders, counters }
    }

    /// Sends a command to a worker; a full channel (or a worker that does
    /// not exist) is counted.
    pub(crate) fn send(&self, worker: usize, cmd: Command) {
        match self.senders.get(worker) {
            Some(tx) if tx.try_send(cmd).is_ok() => {}
            _ => bump(&self.counters.command_drops),
        }
    }

    /// Sends a command to every worker.
    pub(crate) fn broadcast(&self, make: impl Fn() -> Command) {
        for w in 0..self.senders.len() {
            self.send(w, make());
        }
    }
}
