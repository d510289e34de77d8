//! Random bytes drawn from a [`RandomSource`] in bulk.
//!
//! Every `C_GenerateRandom` costs a session from the pool and a round trip
//! into the token, however few bytes it returns. [`BufferedRandom`] asks its
//! source for `bulk` bytes at a time and hands them out in order, so callers
//! that want a few bytes each (a certificate serial wants 16) share one call
//! per `bulk` bytes. The bytes are still the source's, and each is handed out
//! once: a byte given to a caller is wiped from the buffer at once, and the
//! unused rest is wiped when the buffer is refilled or dropped. The buffer is
//! never printed (`Debug` shows only how many bytes are left).

use std::sync::{Arc, Mutex, PoisonError};

use zeroize::{Zeroize, Zeroizing};

use crate::RandomSource;
use crate::error::Result;

/// A [`RandomSource`] that draws from another one `bulk` bytes at a time;
/// see the module docs.
pub struct BufferedRandom {
    source: Arc<dyn RandomSource>,
    bulk: usize,
    /// Bytes drawn and not yet handed out; they are taken from the end.
    unused: Mutex<Zeroizing<Vec<u8>>>,
}

impl BufferedRandom {
    /// Draws from `source` `bulk` bytes at a time (at least one). A request
    /// larger than `bulk` goes to `source` directly.
    pub fn new(source: Arc<dyn RandomSource>, bulk: usize) -> Self {
        BufferedRandom {
            source,
            bulk: bulk.max(1),
            unused: Mutex::new(Zeroizing::new(Vec::new())),
        }
    }
}

impl RandomSource for BufferedRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<()> {
        if buf.len() > self.bulk {
            return self.source.fill(buf);
        }
        let mut unused = self.unused.lock().unwrap_or_else(PoisonError::into_inner);
        if unused.len() < buf.len() {
            // Drawn into a fresh buffer, so a failed draw leaves nothing
            // half-written behind; the old remainder is wiped as it drops.
            let mut fresh = Zeroizing::new(vec![0u8; self.bulk]);
            self.source.fill(&mut fresh)?;
            *unused = fresh;
        }
        let start = unused.len() - buf.len();
        buf.copy_from_slice(&unused[start..]);
        unused[start..].zeroize();
        unused.truncate(start);
        Ok(())
    }
}

impl std::fmt::Debug for BufferedRandom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let left = self
            .unused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("BufferedRandom")
            .field("bulk", &self.bulk)
            .field("unused_bytes", &left)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

    use super::*;
    use crate::error::Error;

    /// Counts its calls and returns 1, 2, 3, … across calls, so every byte
    /// handed out is distinguishable.
    #[derive(Default)]
    struct Counting {
        calls: AtomicUsize,
        next: AtomicU8,
        fail: std::sync::atomic::AtomicBool,
    }

    impl RandomSource for Counting {
        fn fill(&self, buf: &mut [u8]) -> Result<()> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) {
                return Err(Error::Unavailable {
                    token: "test".into(),
                    reason: "the token is gone".into(),
                });
            }
            for b in buf.iter_mut() {
                *b = self.next.fetch_add(1, Ordering::SeqCst).wrapping_add(1);
            }
            Ok(())
        }
    }

    fn buffered(bulk: usize) -> (Arc<Counting>, BufferedRandom) {
        let source = Arc::new(Counting::default());
        let random = BufferedRandom::new(Arc::clone(&source) as Arc<dyn RandomSource>, bulk);
        (source, random)
    }

    #[test]
    fn one_draw_serves_many_requests_and_no_byte_is_handed_out_twice() {
        let (source, random) = buffered(64);
        let mut seen = Vec::new();
        for _ in 0..8 {
            let mut buf = [0u8; 16];
            random.fill(&mut buf).expect("fill");
            seen.extend_from_slice(&buf);
        }
        assert_eq!(source.calls.load(Ordering::SeqCst), 2, "64 bytes per draw");
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 128, "every byte handed out once");
    }

    #[test]
    fn a_short_remainder_is_dropped_for_a_fresh_draw() {
        let (source, random) = buffered(40);
        let mut buf = [0u8; 16];
        random.fill(&mut buf).expect("first");
        random.fill(&mut buf).expect("second");
        // 8 bytes left, 16 wanted: a new draw.
        random.fill(&mut buf).expect("third");
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
        assert!(buf.iter().all(|&b| b > 40), "from the second draw: {buf:?}");
    }

    #[test]
    fn a_request_larger_than_the_bulk_goes_to_the_source() {
        let (source, random) = buffered(8);
        let mut buf = [0u8; 32];
        random.fill(&mut buf).expect("fill");
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
        assert_eq!(buf[0], 1);
        assert_eq!(buf[31], 32);
    }

    #[test]
    fn a_failed_draw_fails_the_request_and_the_next_one_draws_again() {
        let (source, random) = buffered(32);
        source.fail.store(true, Ordering::SeqCst);
        let mut buf = [0u8; 16];
        assert!(random.fill(&mut buf).is_err());
        assert_eq!(buf, [0u8; 16], "nothing handed out");
        source.fail.store(false, Ordering::SeqCst);
        random.fill(&mut buf).expect("after recovery");
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn debug_shows_no_bytes() {
        let (_, random) = buffered(32);
        let mut buf = [0u8; 16];
        random.fill(&mut buf).expect("fill");
        let shown = format!("{random:?}");
        assert_eq!(
            shown, "BufferedRandom { bulk: 32, unused_bytes: 16, .. }",
            "{shown}"
        );
    }
}
