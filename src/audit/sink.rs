//! What the trail's sinks share: a [`Batch`] of sealed records that the
//! trail offers to every sink, the rule that decides which of its records
//! are accepted, and the thread that drives one [`Sink`].
//!
//! A record is accepted as soon as one sink has written it (the file: in the
//! operating system, or on the disk with `audit.sync_before_reply`; syslog:
//! sent on its socket). With several sinks each runs on its own thread
//! behind a bounded inbox ([`drive`]), so a sink that is stuck (a disk that
//! stops answering, a receiver that stops reading) holds up neither the
//! others nor the requests: they wait for the first sink that answers, at
//! most the trail's bound. A trail with one sink writes it on its chain
//! thread ([`Driven`]), saving a hand-off per batch.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Instant, SystemTime};

use tokio::sync::oneshot;

use super::Sealed;
use super::trail::TrailHealth;

/// Where a request learns what became of its record: its sequence number,
/// or why no sink accepted it.
pub(super) type Answer = oneshot::Sender<Result<u64, String>>;

/// A destination of the trail's records.
pub(super) trait Sink: Send {
    /// Writes `batch`'s records in order, each whole, and says how far it
    /// got.
    fn write(&mut self, batch: &Batch) -> Written;

    /// When the sink next has work of its own (a flush to the disk), if any.
    fn due(&self) -> Option<Instant> {
        None
    }

    /// Does that work; what went wrong, if anything did.
    fn tick(&mut self) -> Option<String> {
        None
    }

    /// The file the sink writes now (the file sink's), for the health.
    fn file(&self) -> Option<PathBuf> {
        None
    }
}

/// How far a sink got with a batch. Records are written in order, so what
/// it wrote is always the batch's first records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Written {
    /// The first `accepted` records are written: they count as accepted.
    pub(super) accepted: usize,
    /// No record after the first `reached` can have reached the sink's
    /// destination (at least `accepted`; more when a file took records but
    /// could not flush them to the disk): the chain is never rolled back
    /// past them.
    pub(super) reached: usize,
    /// Why the rest were not written.
    pub(super) problem: Option<String>,
    /// Something wrong that did not stop the write (a file deleted under
    /// the writer), for the health.
    pub(super) notice: Option<String>,
}

impl Written {
    /// All `n` records written.
    pub(super) fn all(n: usize) -> Written {
        Written {
            accepted: n,
            reached: n,
            problem: None,
            notice: None,
        }
    }

    /// None written, because of `problem`.
    pub(super) fn none(problem: String) -> Written {
        Written {
            accepted: 0,
            reached: 0,
            problem: Some(problem),
            notice: None,
        }
    }
}

/// Sealed records offered to every sink, and the requests waiting for them.
pub(super) struct Batch {
    /// The first record's sequence number.
    pub(super) first_seq: u64,
    /// The hash of the record before the first (the chain it continues).
    pub(super) prev_hash: String,
    /// Each record's line, newline included, as the file holds it.
    pub(super) lines: Vec<String>,
    /// Each record's hash.
    pub(super) hashes: Vec<String>,
    /// When each record was made (its `time`).
    pub(super) times: Vec<SystemTime>,
    outcome: Mutex<Outcome>,
    settled: Condvar,
}

/// What the sinks have said about a batch so far.
struct Outcome {
    /// Each record's waiting request, until answered.
    answers: Vec<Option<Answer>>,
    /// Records (from the first) that some sink wrote.
    accepted: usize,
    /// Records (from the first) that may have reached some sink.
    reached: usize,
    /// Sinks yet to answer.
    pending: usize,
    /// Why sinks failed, in the order they answered.
    problems: Vec<String>,
}

/// What became of a batch, for the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decision {
    /// Every sink answered: the first `accepted` records are accepted, and
    /// none after the first `reached` reached any sink.
    Settled {
        /// Records accepted.
        accepted: usize,
        /// Records that may be somewhere.
        reached: usize,
        /// Why the others were not accepted (empty if all were).
        problem: String,
    },
    /// Some sink had not answered by the deadline; the first `accepted`
    /// records are accepted, and the others may still be written.
    Undecided {
        /// Records accepted so far.
        accepted: usize,
    },
}

impl Batch {
    /// A batch of `sealed` records continuing the chain at `first_seq - 1`
    /// (hash `prev_hash`), made at `times`, answered through `answers`, for
    /// `sinks` sinks.
    pub(super) fn new(
        first_seq: u64,
        prev_hash: String,
        sealed: Sealed,
        times: Vec<SystemTime>,
        answers: Vec<Answer>,
        sinks: usize,
    ) -> Batch {
        Batch {
            first_seq,
            prev_hash,
            lines: sealed.lines,
            hashes: sealed.hashes,
            times,
            outcome: Mutex::new(Outcome {
                answers: answers.into_iter().map(Some).collect(),
                accepted: 0,
                reached: 0,
                pending: sinks,
                problems: Vec::new(),
            }),
            settled: Condvar::new(),
        }
    }

    /// Records in the batch.
    pub(super) fn len(&self) -> usize {
        self.lines.len()
    }

    /// The chain's head after the batch's first `n` records: the last one's
    /// sequence number and hash.
    pub(super) fn head_after(&self, n: usize) -> (u64, &str) {
        match n.checked_sub(1).and_then(|i| self.hashes.get(i)) {
            Some(hash) => (self.first_seq - 1 + n as u64, hash),
            None => (self.first_seq - 1, &self.prev_hash),
        }
    }

    /// A sink's answer: answers the requests whose records it wrote first.
    /// The requests whose records no sink wrote are answered by
    /// [`Batch::refuse`], once the trail's health says so.
    pub(super) fn report(&self, written: &Written) {
        let mut outcome = self.outcome.lock().unwrap_or_else(|p| p.into_inner());
        let accepted = written.accepted.min(self.len());
        for i in outcome.accepted..accepted {
            if let Some(answer) = outcome.answers[i].take() {
                // The request may have given up waiting; the record stands.
                let _ = answer.send(Ok(self.first_seq + i as u64));
            }
        }
        outcome.accepted = outcome.accepted.max(accepted);
        outcome.reached = outcome.reached.max(written.reached.max(accepted));
        outcome.pending = outcome.pending.saturating_sub(1);
        if let Some(problem) = &written.problem {
            outcome.problems.push(problem.clone());
        }
        self.settled.notify_all();
    }

    /// Fails the requests whose records no sink wrote, with `problem`.
    pub(super) fn refuse(&self, problem: &str) {
        let mut outcome = self.outcome.lock().unwrap_or_else(|p| p.into_inner());
        for answer in outcome.answers.iter_mut().filter_map(Option::take) {
            let _ = answer.send(Err(problem.to_string()));
        }
    }

    /// Waits until every record is accepted or every sink has answered, at
    /// most until `deadline`.
    pub(super) fn wait(&self, deadline: Instant) -> Decision {
        let mut outcome = self.outcome.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if outcome.pending == 0 || outcome.accepted == self.len() {
                return Decision::Settled {
                    accepted: outcome.accepted,
                    reached: outcome.reached,
                    problem: outcome.problems.join("; "),
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Decision::Undecided {
                    accepted: outcome.accepted,
                };
            }
            outcome = self
                .settled
                .wait_timeout(outcome, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// A sink and the entry `index` of the trail's health it keeps current.
/// `alone`: it is the trail's only sink, whose failures are the trail's
/// (logged once, by the trail).
pub(super) struct Driven {
    sink: Box<dyn Sink>,
    health: SinkReporter,
}

impl Driven {
    /// Drives `sink`, reporting to entry `index` of `health`.
    pub(super) fn new(
        sink: Box<dyn Sink>,
        index: usize,
        health: Arc<Mutex<TrailHealth>>,
        alone: bool,
    ) -> Driven {
        Driven {
            sink,
            health: SinkReporter {
                index,
                health,
                alone,
            },
        }
    }

    /// When the sink next has work of its own.
    pub(super) fn due(&self) -> Option<Instant> {
        self.sink.due()
    }

    /// Does the sink's own work, reporting a failure.
    pub(super) fn tick(&mut self) {
        self.health.ticked(self.sink.tick());
    }

    /// Writes `batch`, updates the health, then answers the batch's
    /// requests; does the sink's own work if it is due.
    pub(super) fn write(&mut self, batch: &Batch) {
        let written = self.sink.write(batch);
        // The health is current before any request learns its fate.
        self.health.wrote(&written, batch, self.sink.file());
        batch.report(&written);
        if self.due().is_some_and(|at| at <= Instant::now()) {
            self.tick();
        }
    }
}

/// Runs `driven` on the calling thread (the sink's own) until `inbox`
/// closes, writing each batch.
pub(super) fn drive(mut driven: Driven, inbox: Receiver<Arc<Batch>>) {
    loop {
        let batch = match driven.due() {
            Some(at) => match inbox.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(batch) => batch,
                Err(RecvTimeoutError::Timeout) => {
                    driven.tick();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            },
            None => match inbox.recv() {
                Ok(batch) => batch,
                Err(_) => break,
            },
        };
        driven.write(&batch);
    }
    if driven.due().is_some() {
        driven.tick();
    }
}

/// Updates one sink's entry in the trail's health, logging changes.
struct SinkReporter {
    index: usize,
    health: Arc<Mutex<TrailHealth>>,
    alone: bool,
}

impl SinkReporter {
    /// After `batch`. A sink that wrote all of it makes the trail healthy:
    /// its records are accepted (the trail reports failures itself).
    fn wrote(&self, written: &Written, batch: &Batch, file: Option<PathBuf>) {
        let n = batch.len();
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(file) = file {
            if let Some(sink) = health.sinks.get_mut(self.index) {
                sink.target = file.display().to_string();
            }
            health.file = file;
        }
        if let Some(notice) = &written.notice {
            health.note(notice.clone());
        }
        if written.accepted == n {
            health.last_seq = health.last_seq.max(batch.head_after(n).0);
            if !health.healthy {
                tracing::warn!(file = %health.file.display(), "audit trail writes again");
                health.healthy = true;
            }
        }
        let alone = self.alone;
        let Some(sink) = health.sinks.get_mut(self.index) else {
            return;
        };
        sink.written += written.accepted as u64;
        sink.failed += n.saturating_sub(written.accepted) as u64;
        if let Some(notice) = &written.notice {
            sink.problem = Some(notice.clone());
        }
        match &written.problem {
            Some(problem) => {
                if sink.healthy && !alone {
                    tracing::error!(
                        sink = sink.kind.name(),
                        target = %sink.target,
                        problem = %problem,
                        "audit sink cannot write; records go to the other sinks only"
                    );
                }
                sink.healthy = false;
                sink.problem = Some(problem.clone());
            }
            None if !sink.healthy => {
                if !alone {
                    tracing::warn!(
                        sink = sink.kind.name(),
                        target = %sink.target,
                        "audit sink writes again"
                    );
                }
                sink.healthy = true;
            }
            None => {}
        }
    }

    /// After the sink's own work (a flush), which failed with `problem`.
    fn ticked(&self, problem: Option<String>) {
        let Some(problem) = problem else {
            return;
        };
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        let Some(sink) = health.sinks.get_mut(self.index) else {
            return;
        };
        tracing::error!(
            sink = sink.kind.name(),
            problem = %problem,
            "audit trail cannot flush to disk"
        );
        sink.healthy = false;
        sink.problem = Some(problem.clone());
        // The trail is unhealthy when no sink is.
        if !health.sinks.iter().any(|s| s.healthy) {
            health.healthy = false;
        }
        health.note(problem);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize, sinks: usize) -> (Batch, Vec<oneshot::Receiver<Result<u64, String>>>) {
        let (answers, receivers): (Vec<_>, Vec<_>) = (0..n).map(|_| oneshot::channel()).unzip();
        let sealed = Sealed {
            records: Vec::new(),
            lines: (0..n).map(|i| format!("line {i}\n")).collect(),
            hashes: (0..n).map(|i| format!("hash{i}")).collect(),
        };
        let times = vec![SystemTime::UNIX_EPOCH; n];
        (
            Batch::new(10, "prev".into(), sealed, times, answers, sinks),
            receivers,
        )
    }

    #[test]
    fn records_are_accepted_by_the_first_sink_that_writes_them() {
        let (b, mut answers) = batch(3, 2);
        // One sink wrote the first two, then failed.
        b.report(&Written {
            accepted: 2,
            reached: 2,
            problem: Some("syslog: refused".into()),
            notice: None,
        });
        assert_eq!(answers[0].try_recv(), Ok(Ok(10)));
        assert_eq!(answers[1].try_recv(), Ok(Ok(11)));
        assert!(answers[2].try_recv().is_err(), "still waiting");
        let soon = Instant::now() + std::time::Duration::from_millis(20);
        assert_eq!(b.wait(soon), Decision::Undecided { accepted: 2 });
        // The other failed all: the last record is refused with both reasons.
        b.report(&Written::none("file: disk full".into()));
        assert!(answers[2].try_recv().is_err(), "refused by the trail");
        b.refuse("syslog: refused; file: disk full");
        assert_eq!(
            answers[2].try_recv(),
            Ok(Err("syslog: refused; file: disk full".into()))
        );
        assert_eq!(
            b.wait(Instant::now()),
            Decision::Settled {
                accepted: 2,
                reached: 2,
                problem: "syslog: refused; file: disk full".into()
            }
        );
        assert_eq!(b.head_after(2), (11, "hash1"));
        assert_eq!(b.head_after(0), (9, "prev"));
    }

    #[test]
    fn a_batch_is_settled_once_one_sink_wrote_everything() {
        let (b, mut answers) = batch(2, 2);
        b.report(&Written::all(2));
        assert_eq!(
            b.wait(Instant::now()),
            Decision::Settled {
                accepted: 2,
                reached: 2,
                problem: String::new()
            }
        );
        assert_eq!(answers[1].try_recv(), Ok(Ok(11)));
        // The slower sink's answer changes nothing for the requests.
        b.report(&Written::none("late".into()));
        assert_eq!(answers[0].try_recv(), Ok(Ok(10)));
    }
}
