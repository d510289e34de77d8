//! The bounded pool that runs blocking work (HSM and store calls) off the
//! async threads.
//!
//! Every call into the HSM or the store blocks, so it runs on tokio's
//! blocking threads (issuance excepted: see `issuance`). A semaphore bounds how many run at once:
//! [`CALLS_PER_SESSION`] per HSM working session. A permit is held until the
//! work finishes, even if the caller has gone away, because the HSM session
//! or the store write stays busy until then.
//!
//! Why more calls than sessions: a call holds its permit while it waits for
//! the store's group commit (see `store::sqlite`), and calls waiting
//! together are what a commit batch is made of. Issuance, the heaviest
//! writer, batches its own writes on its own threads instead (see
//! `issuance`). The HSM stays bounded by its own session pool: calls beyond
//! its sessions wait there for a session (up to its `acquire_timeout`),
//! holding only a parked thread.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::status::Failure;

/// Blocking calls allowed at once per HSM working session; see the module docs.
pub(crate) const CALLS_PER_SESSION: usize = 32;

/// Runs blocking closures, at most `size` at a time.
#[derive(Debug, Clone)]
pub(crate) struct BlockingPool {
    /// One permit per call allowed at once.
    permits: Arc<Semaphore>,
}

impl BlockingPool {
    /// The pool for an HSM with `sessions` working sessions:
    /// [`CALLS_PER_SESSION`] calls per session.
    pub(crate) fn for_sessions(sessions: usize) -> Self {
        BlockingPool::new(sessions.max(1).saturating_mul(CALLS_PER_SESSION))
    }

    /// A pool running at most `size` closures at once (at least one).
    pub(crate) fn new(size: usize) -> Self {
        BlockingPool {
            permits: Arc::new(Semaphore::new(size.max(1))),
        }
    }

    /// Waits for a permit, then runs `work` on a blocking thread.
    ///
    /// Fails with [`Failure::Internal`] if `work` panicked.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, Failure>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| Failure::Unavailable("the server is shutting down".into()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "a blocking task failed");
            unexpected()
        })
    }
}

/// Runs short work that never blocks (no HSM, no store; for instance the
/// transit engine's memory-only `try_` methods) on the calling async
/// thread, without the hand-off to a blocking thread, but failing as
/// [`BlockingPool::run`] does: a panic becomes [`Failure::Internal`].
pub(crate) fn inline<T>(work: impl FnOnce() -> T) -> Result<T, Failure> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).map_err(|_| {
        tracing::error!("an inline task panicked");
        unexpected()
    })
}

/// The failure of work that panicked.
fn unexpected() -> Failure {
    Failure::Internal("the operation failed unexpectedly; see the server log".into())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_size_closures_run_at_once() {
        let pool = BlockingPool::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let pool = pool.clone();
            let running = Arc::clone(&running);
            let most = Arc::clone(&most);
            tasks.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        for task in tasks {
            task.await.expect("task").expect("ran");
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_pool_allows_calls_per_session() {
        let permits = |sessions| {
            BlockingPool::for_sessions(sessions)
                .permits
                .available_permits()
        };
        assert_eq!(permits(2), 2 * CALLS_PER_SESSION);
        assert_eq!(permits(0), CALLS_PER_SESSION, "at least one session");
    }

    #[test]
    fn inline_work_runs_here_and_a_panic_is_an_internal_failure() {
        let here = std::thread::current().id();
        assert_eq!(inline(|| std::thread::current().id()).expect("ran"), here);
        let result: Result<(), Failure> = inline(|| panic!("boom"));
        assert!(matches!(result, Err(Failure::Internal(_))));
    }

    #[tokio::test]
    async fn a_panic_is_an_internal_failure() {
        let pool = BlockingPool::new(1);
        let result: Result<(), Failure> = pool.run(|| panic!("boom")).await;
        assert!(matches!(result, Err(Failure::Internal(_))));
        // The permit came back.
        assert_eq!(pool.run(|| 7).await.expect("ran"), 7);
    }
}
