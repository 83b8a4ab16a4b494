//! Password verification on a bounded pool of dedicated threads.
//!
//! argon2 is slow and memory-hard on purpose (about 35 ms and 19 MiB per verification with the
//! crate's defaults, on this project's CI machine). Unbounded, a flood of sign-ins runs
//! hundreds at once: the process grew from 300 MB to 11 GB resident under 100 threads of wrong
//! passwords, and everything else waited for CPU. Here `workers` threads of their own (never the
//! async workers) verify one password at a time each, at most `queue` more wait for a turn, and a
//! sign-in beyond that is refused at once with [`Busy`], which the dialects answer with 503 and
//! `Retry-After`.
//!
//! Why threads of its own rather than tokio's blocking pool behind a semaphore: the blocking pool
//! hands jobs to whichever of its threads is free or new, and glibc gives each thread its own
//! malloc arena, where a freed 19 MiB argon2 block stays resident. Measured with 600 wrong
//! passwords from 100 clients, that grew the server by 276 MB although only two verifications
//! ever ran at once. Each worker also verifies with memory of its own, allocated once
//! ([`password::Verifier`]), so the memory held is `workers` blocks, whatever the allocator does.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
    mpsc::{self, SyncSender, TrySendError},
};

use tokio::sync::oneshot;

use super::password;

/// The pool is full: try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many sign-ins are being verified; try again shortly")]
pub struct Busy;

struct Job {
    password: String,
    stored: String,
    answer: oneshot::Sender<bool>,
}

#[derive(Debug, Default)]
struct Counters {
    /// Admitted and not finished: running plus waiting.
    admitted: AtomicUsize,
    /// Verifications run to completion.
    completed: AtomicUsize,
}

#[derive(Debug)]
pub struct HashPool {
    jobs: SyncSender<Job>,
    counters: Arc<Counters>,
    workers: usize,
}

impl HashPool {
    /// `workers` threads (at least one), `queue` more verifications waiting. The threads end
    /// when the pool is dropped.
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        let (jobs, waiting) = mpsc::sync_channel::<Job>(queue);
        let waiting = Arc::new(Mutex::new(waiting));
        let counters = Arc::new(Counters::default());
        for index in 0..workers {
            let (waiting, counters) = (waiting.clone(), counters.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("confer-argon2-{index}"))
                .spawn(move || work(&waiting, &counters));
            if let Err(error) = spawned {
                // Fewer threads only means fewer verifications at once; none at all would make
                // every sign-in `Busy`, which the log then explains.
                tracing::error!(%error, "could not start a password verification thread");
            }
        }
        Self {
            jobs,
            counters,
            workers,
        }
    }

    /// One worker per core, and a queue of two per worker: a burst of sign-ins waits at most a
    /// few verification times; a flood is refused.
    pub fn per_core() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(cores, 2 * cores)
    }

    /// Whether `password` matches the stored PHC hash; `Ok(false)` for an unreadable hash (a
    /// corrupt record must not sign anyone in, and must cost what a wrong password costs).
    pub async fn verify(&self, password: &str, stored: &str) -> Result<bool, Busy> {
        let (answer, answered) = oneshot::channel();
        let job = Job {
            password: password.to_owned(),
            stored: stored.to_owned(),
            answer,
        };
        self.counters.admitted.fetch_add(1, Ordering::AcqRel);
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.admitted.fetch_sub(1, Ordering::AcqRel);
                return Err(Busy);
            }
        }
        answered.await.map_err(|_| Busy)
    }

    /// How many verifications run at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Verifications run to completion so far.
    pub fn completed(&self) -> usize {
        self.counters.completed.load(Ordering::Relaxed)
    }

    /// Verifications running or waiting now.
    pub fn in_flight(&self) -> usize {
        self.counters.admitted.load(Ordering::Acquire)
    }
}

fn work(waiting: &Mutex<mpsc::Receiver<Job>>, counters: &Counters) {
    let mut verifier = password::Verifier::default();
    loop {
        // The lock is held only to take the next job, never while hashing.
        let next = waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .recv();
        let Ok(job) = next else { return };
        // A sign-in whose request went away (client gone, deadline passed) costs nothing more.
        if job.answer.is_closed() {
            counters.admitted.fetch_sub(1, Ordering::AcqRel);
            continue;
        }
        let matched = verifier.verify(&job.password, &job.stored).unwrap_or(false);
        counters.completed.fetch_add(1, Ordering::Relaxed);
        // Counted out before answering, so whoever was answered sees the pool without it.
        counters.admitted.fetch_sub(1, Ordering::AcqRel);
        let _ = job.answer.send(matched);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn beyond_the_workers_and_the_queue_sign_ins_are_refused() {
        let stored = password::hash("demo").unwrap();
        let pool = Arc::new(HashPool::new(1, 2));
        let attempts: Vec<_> = (0..12)
            .map(|_| {
                let (pool, stored) = (pool.clone(), stored.clone());
                tokio::spawn(async move { pool.verify("wrong", &stored).await })
            })
            .collect();
        let mut refused = 0;
        for attempt in attempts {
            match attempt.await.unwrap() {
                Ok(matched) => assert!(!matched),
                Err(Busy) => refused += 1,
            }
        }
        // All twelve arrive within a hash's time, so most find the pool full (how many exactly
        // depends on scheduling); an unbounded pool refuses none.
        assert!(
            refused > 0,
            "1 running + 2 waiting admitted at most, yet none refused"
        );
        assert_eq!(pool.in_flight(), 0);
        assert_eq!(pool.verify("demo", &stored).await, Ok(true));
        assert_eq!(pool.verify("demo", "not a hash").await, Ok(false));
        assert_eq!(pool.completed(), 12 - refused + 2);
    }
}
