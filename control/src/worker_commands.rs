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

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use crossbeam_channel::{bounded, Receiver};

    use super::*;

    #[test]
    fn a_full_channel_or_a_missing_worker_is_counted_not_waited_for() {
        let counters = Arc::new(ControlCounters::default());
        let (tx0, rx0) = bounded(1);
        let (tx1, rx1) = bounded(2);
        let workers = WorkerCommands::new(vec![tx0, tx1], Arc::clone(&counters));
        let drops = || counters.command_drops.load(Ordering::Relaxed);

        workers.send(0, Command::SendKeepalive { id: 7 });
        assert_eq!(drops(), 0);
        // Worker 0's channel holds one: the next is refused and counted.
        workers.send(0, Command::SendKeepalive { id: 8 });
        assert_eq!(drops(), 1);
        // No worker 2.
        workers.send(2, Command::SendKeepalive { id: 9 });
        assert_eq!(drops(), 2);
        // A broadcast reaches every worker with room: only worker 0's is
        // refused.
        workers.broadcast(|| Command::ClearSession { id: 3 });
        assert_eq!(drops(), 3);
        let ids = |rx: &Receiver<Command>| {
            rx.try_iter()
                .map(|c| match c {
                    Command::SendKeepalive { id } | Command::ClearSession { id } => id,
                    _ => u32::MAX,
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&rx0), vec![7]);
        assert_eq!(ids(&rx1), vec![3]);
    }
}
