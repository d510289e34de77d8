//! The issuance pipeline: certificate requests from every caller, issued in
//! batches by a few dedicated threads.
//!
//! A certificate costs two durable store commits (recorded pending, then
//! completed) around one HSM signature. Issued one request per blocking
//! thread, every request slept and woke for each commit and crossed between
//! threads on the way in and out: about seven context switches per
//! certificate at 64 clients, a quarter of the server's CPU. Here each
//! pipeline thread takes every queued request, up to [`MAX_BATCH`], records
//! them all pending together ([`Authority::prepare_all`]: one commit), signs
//! and verifies each in the HSM, and completes them all together
//! ([`Authority::issue_all`]: one commit). Callers wait on async channels,
//! so a request wakes no thread of its own.
//!
//! Nothing about a certificate changes: each is recorded pending before it
//! is signed, and its caller hears of it only once its completion is
//! durable. Requests fail alone (a profile violation, a lint finding, a
//! refused write): the rest of their batch goes on.
//!
//! Threads, not async tasks, because the HSM and the store block. More than
//! one so that while one waits for a commit's `fsync` another signs. A
//! request whose caller gives up is still issued and recorded (as it was
//! when it ran on a blocking thread): an HSM call cannot be withdrawn.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};

use strongroom_ca::{CaError, IssueRequest, Issued};
use tokio::sync::{mpsc, oneshot};

use super::status::Failure;
use crate::appliance::Appliance;

/// The most requests one thread takes at once. Bounds a batch's latency;
/// with 64 clients and two to four threads, batches are not this big.
const MAX_BATCH: usize = 64;

/// How many requests may wait for a thread; callers beyond it wait to queue.
const QUEUE: usize = 1024;

/// The threads issuing certificates, and the queue that feeds them.
#[derive(Debug, Clone)]
pub(crate) struct IssuancePipeline {
    jobs: mpsc::Sender<Job>,
}

/// One request, the appliance to issue it from, and where its caller waits.
struct Job {
    appliance: Arc<Appliance>,
    request: IssueRequest,
    reply: oneshot::Sender<Result<Issued, CaError>>,
}

impl IssuancePipeline {
    /// Starts `threads` issuing threads (at least one). They stop once every
    /// copy of the pipeline is dropped and the queue is empty.
    pub(crate) fn start(threads: usize) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("issuance-{n}"))
                .spawn(move || work(&queue))?;
        }
        Ok(IssuancePipeline { jobs })
    }

    /// Records, signs and completes the certificate `request` asks for, from
    /// `appliance`'s authority.
    pub(crate) async fn issue(
        &self,
        appliance: Arc<Appliance>,
        request: IssueRequest,
    ) -> Result<Issued, Failure> {
        let (reply, issued) = oneshot::channel();
        self.jobs
            .send(Job {
                appliance,
                request,
                reply,
            })
            .await
            .map_err(|_| Failure::Unavailable("the server is shutting down".into()))?;
        match issued.await {
            Ok(result) => Ok(result?),
            // The batch panicked (logged where it happened).
            Err(_) => Err(Failure::Internal(
                "the operation failed unexpectedly; see the server log".into(),
            )),
        }
    }
}

/// One issuing thread: takes what is queued, issues it, until the queue closes.
fn work(queue: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let mut batch = Vec::new();
        {
            let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
            match queue.blocking_recv() {
                Some(job) => batch.push(job),
                None => return,
            }
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        // Requests made before and after an unseal name different appliances.
        while let Some(first) = batch.first() {
            let appliance = Arc::clone(&first.appliance);
            let (same, rest): (Vec<Job>, Vec<Job>) = batch
                .into_iter()
                .partition(|job| Arc::ptr_eq(&job.appliance, &appliance));
            batch = rest;
            if catch_unwind(AssertUnwindSafe(|| issue_all(&appliance, same))).is_err() {
                // Its callers' channels were dropped as it unwound: they fail.
                tracing::error!("an issuance batch panicked");
            }
        }
    }
}

/// Issues `jobs` from `appliance` and answers each caller: the refused at
/// once, the rest once their certificates are completed.
fn issue_all(appliance: &Appliance, jobs: Vec<Job>) {
    let authority = &appliance.authority;
    let (requests, replies): (Vec<IssueRequest>, Vec<_>) =
        jobs.into_iter().map(|job| (job.request, job.reply)).unzip();
    let mut signing = Vec::with_capacity(replies.len());
    let mut waiting = Vec::with_capacity(replies.len());
    for (prepared, reply) in authority.prepare_all(requests).into_iter().zip(replies) {
        match prepared {
            Ok(prepared) => {
                signing.push(prepared);
                waiting.push(reply);
            }
            // The caller may have gone: nobody to tell.
            Err(e) => drop(reply.send(Err(e))),
        }
    }
    for (issued, reply) in authority.issue_all(signing).into_iter().zip(waiting) {
        drop(reply.send(issued));
    }
}
