//! The bounded pool that runs blocking work (HSM and store calls) off the
//! async threads.
//!
//! Every call into the HSM or the store blocks, so it runs on tokio's
//! blocking threads. A semaphore with as many permits as the HSM has working
//! sessions bounds how many run at once: more would only queue inside the
//! token's session pool while holding a thread each. A permit is held until
//! the work finishes, even if the caller has gone away, because the HSM
//! session stays busy until then.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::status::Failure;

/// Runs blocking closures, at most `size` at a time.
#[derive(Debug, Clone)]
pub(crate) struct BlockingPool {
    /// One permit per HSM session.
    permits: Arc<Semaphore>,
}

impl BlockingPool {
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
            Failure::Internal("the operation failed unexpectedly; see the server log".into())
        })
    }
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

    #[tokio::test]
    async fn a_panic_is_an_internal_failure() {
        let pool = BlockingPool::new(1);
        let result: Result<(), Failure> = pool.run(|| panic!("boom")).await;
        assert!(matches!(result, Err(Failure::Internal(_))));
        // The permit came back.
        assert_eq!(pool.run(|| 7).await.expect("ran"), 7);
    }
}
