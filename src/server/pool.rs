//! The session workers: a thread per connected client, started when a client comes and
//! ended when it has been idle a while, up to `--max-clients`.
//!
//! `threadpool` (which the argon2 hasher uses, a fixed pool of one thread per core) starts
//! every thread at once and never lets one go: with `--max-clients 10000` that is ten
//! thousand threads before anyone connects. This pool grows with the load and shrinks back,
//! so an idle server has a handful of threads. A thread that finishes a job waits
//! [`Pool::new`]'s `idle` for the next one (a reconnect storm reuses warm threads), then ends.
//!
//! The queue is a `Mutex` + `Condvar`; every `JoinHandle` is kept and joined at [`Pool::join`].

use std::collections::{HashMap, VecDeque};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A pool of worker threads that grows on demand and shrinks when idle.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    /// Signalled when a job is queued or the pool stops.
    work: Condvar,
    /// Each thread's stack size.
    stack: usize,
    /// How long a thread waits for work before it ends.
    idle: Duration,
    name: String,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Threads alive.
    threads: usize,
    /// Threads waiting for a job.
    idle: usize,
    /// Handles of the threads alive, to join at [`Pool::join`]. A thread that ends by
    /// itself drops its own handle (detaching itself), so the system frees its stack: an
    /// exited thread that is neither joined nor detached keeps its stack mapped.
    handles: HashMap<ThreadId, JoinHandle<()>>,
    /// No more jobs: threads end once the queue is empty.
    stopping: bool,
    /// Most threads at once (changed by a reload of `--max-clients`/`--max-pending`).
    max: usize,
}

impl Pool {
    pub fn new(max: usize, stack: usize, idle: Duration, name: &str) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    max: max.max(1),
                    ..State::default()
                }),
                work: Condvar::new(),
                stack,
                idle,
                name: name.to_string(),
            }),
        }
    }

    /// Runs `job` on an idle thread, or on a new one if none is idle and the pool is below
    /// its maximum; otherwise it waits in the queue for the next thread free. Fails only if
    /// a needed thread cannot be started and no thread is alive to take the job.
    pub fn execute(&self, job: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let mut st = self.inner.lock();
        st.jobs.push_back(Box::new(job));
        if st.idle >= st.jobs.len() {
            self.inner.work.notify_one();
            return Ok(());
        }
        if st.threads < st.max {
            if let Err(e) = self.spawn(&mut st) {
                if st.threads == 0 {
                    st.jobs.pop_back();
                    return Err(e);
                }
                log::warn!("cannot start a worker thread ({e}); the job waits for a free one");
            }
        }
        Ok(())
    }

    fn spawn(&self, st: &mut State) -> io::Result<()> {
        let inner = self.inner.clone();
        let handle = thread::Builder::new()
            .name(self.inner.name.clone())
            .stack_size(self.inner.stack)
            .spawn(move || inner.work_loop())?;
        st.threads += 1;
        // Under the lock the new thread needs before it can end: it always finds its handle.
        st.handles.insert(handle.thread().id(), handle);
        Ok(())
    }

    /// Changes the most threads at once. Raised, it starts threads for jobs that were
    /// waiting for one; lowered, threads beyond it end as their jobs do (a running session
    /// is never cut for it).
    pub fn set_max(&self, max: usize) {
        let mut st = self.inner.lock();
        st.max = max.max(1);
        while st.threads < st.max && st.jobs.len() > st.idle {
            if let Err(e) = self.spawn(&mut st) {
                log::warn!("cannot start a worker thread ({e}); the jobs wait for a free one");
                break;
            }
        }
    }

    /// Threads alive now.
    pub fn threads(&self) -> usize {
        self.inner.lock().threads
    }

    /// Lets the queued jobs finish, then ends and joins every thread.
    pub fn join(&self) {
        let handles = {
            let mut st = self.inner.lock();
            st.stopping = true;
            self.inner.work.notify_all();
            std::mem::take(&mut st.handles)
        };
        for (_, h) in handles {
            let _ = h.join();
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn work_loop(&self) {
        loop {
            let job = {
                let mut st = self.lock();
                let job = loop {
                    // Lowered by a reload: this thread is one too many.
                    if st.threads > st.max {
                        break None;
                    }
                    if let Some(job) = st.jobs.pop_front() {
                        break Some(job);
                    }
                    if st.stopping {
                        break None;
                    }
                    st.idle += 1;
                    let (guard, waited) = self
                        .work
                        .wait_timeout(st, self.idle)
                        .unwrap_or_else(|p| p.into_inner());
                    st = guard;
                    st.idle -= 1;
                    if waited.timed_out() && st.jobs.is_empty() {
                        break None;
                    }
                };
                if job.is_none() {
                    // Decided under the lock, so `execute` never counts on a thread that
                    // is leaving. (At shutdown `join` holds the handle and joins it.)
                    st.threads -= 1;
                    drop(st.handles.remove(&thread::current().id()));
                    // Woken for a job but leaving (a lowered maximum): another takes it.
                    if !st.jobs.is_empty() {
                        self.work.notify_one();
                    }
                }
                job
            };
            match job {
                // A panicking job (a bug in a session) must not take its thread's
                // bookkeeping with it; the session's own guards have cleaned up.
                Some(job) => {
                    let _ = catch_unwind(AssertUnwindSafe(job));
                }
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::time::Instant;

    #[test]
    fn grows_with_the_load_and_shrinks_when_idle() {
        let pool = Pool::new(8, 64 * 1024, Duration::from_millis(100), "test");
        assert_eq!(pool.threads(), 0, "no thread before any job");
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release = Arc::new(Mutex::new(release_rx));
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..5 {
            let (release, ran) = (release.clone(), ran.clone());
            pool.execute(move || {
                ran.fetch_add(1, Ordering::SeqCst);
                let _ = release.lock().unwrap().recv();
            })
            .unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while ran.load(Ordering::SeqCst) < 5 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(ran.load(Ordering::SeqCst), 5, "jobs run at once");
        assert_eq!(pool.threads(), 5);
        drop(release_tx); // every job returns
        while pool.threads() > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(pool.threads(), 0, "idle threads end");
        // A panicking job does not lose the pool.
        pool.execute(|| panic!("job panics")).unwrap();
        let (tx, rx) = mpsc::channel();
        pool.execute(move || tx.send(1).unwrap()).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(1));
        pool.join();
        assert_eq!(pool.threads(), 0);
    }

    #[test]
    fn released_stack_is_usable_again() {
        let pool = Pool::new(1, 256 * 1024, Duration::from_secs(1), "test");
        let (tx, rx) = mpsc::channel();
        pool.execute(move || {
            // Go deep, release, go deep again: the thread keeps working.
            fn deep(n: u32) -> u64 {
                let buf = [n as u8; 1024];
                if n == 0 {
                    return buf.iter().map(|&b| b as u64).sum();
                }
                deep(n - 1) + buf[7] as u64
            }
            let a = deep(100);
            crate::memory::release_unused_stack();
            let b = deep(100);
            tx.send(a == b).unwrap();
        })
        .unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(true));
        pool.join();
    }

    /// On a worker's real stack: the pages a deep call touched are handed back (no longer
    /// resident), and the caller's frame, above the mark, keeps its contents.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn the_pages_below_the_callers_frame_are_handed_back() {
        /// Goes `n` KiB deep; the address of the deepest buffer.
        #[inline(never)]
        fn deep(n: u32) -> usize {
            let buf = std::hint::black_box([n as u8; 1024]);
            if n == 0 {
                return std::hint::black_box(buf.as_ptr()) as usize;
            }
            let at = deep(n - 1);
            std::hint::black_box(&buf); // live across the call: no tail call
            at
        }
        /// Whether the page holding `addr` is in memory.
        fn resident(addr: usize) -> bool {
            let page = crate::memory::page_size().unwrap();
            let mut vec = 0u8;
            // SAFETY: one page-aligned page of this thread's stack mapping; `vec` has room
            // for its one byte.
            let rc = unsafe { libc::mincore((addr / page * page) as *mut _, page, &mut vec) };
            assert_eq!(rc, 0, "mincore");
            vec & 1 == 1
        }
        let pool = Pool::new(1, 512 * 1024, Duration::from_secs(1), "test");
        let (tx, rx) = mpsc::channel();
        pool.execute(move || {
            let mine = std::hint::black_box([0xA5u8; 2048]);
            let mine_at = std::hint::black_box(mine.as_ptr()) as usize;
            let deepest = deep(200);
            let touched = resident(deepest);
            let released = crate::memory::release_unused_stack();
            let still = resident(deepest);
            let intact = std::hint::black_box(mine).iter().all(|&b| b == 0xA5);
            tx.send((mine_at, deepest, touched, released, still, intact))
                .unwrap();
        })
        .unwrap();
        let (mine_at, deepest, touched, released, still, intact) =
            rx.recv_timeout(Duration::from_secs(5)).unwrap();
        pool.join();
        let released = released.expect("some pages released");
        let page = crate::memory::page_size().unwrap();
        assert_eq!((released.start % page, released.end % page), (0, 0));
        assert!(
            released.end + crate::memory::KEEP_BELOW <= mine_at,
            "reaches the caller's frame"
        );
        assert!(
            released.contains(&deepest),
            "{released:x?} misses {deepest:x}"
        );
        assert!(touched, "the deep page was in memory before");
        assert!(!still, "the deep page is still in memory");
        assert!(intact, "the caller's local changed");
    }

    #[test]
    fn never_more_than_max_threads() {
        let pool = Pool::new(2, 64 * 1024, Duration::from_secs(5), "test");
        let (tx, rx) = mpsc::channel();
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        for i in 0..6 {
            let (tx, gate) = (tx.clone(), gate.clone());
            pool.execute(move || {
                let _g = gate.lock();
                tx.send(i).unwrap();
            })
            .unwrap();
        }
        assert!(pool.threads() <= 2);
        drop(held);
        let mut got: Vec<i32> = (0..6)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        got.sort();
        assert_eq!(got, vec![0, 1, 2, 3, 4, 5], "queued jobs all ran");
        pool.join();
    }

    #[test]
    fn a_raised_max_serves_waiting_jobs_and_a_lowered_one_sheds_threads() {
        let pool = Pool::new(1, 64 * 1024, Duration::from_secs(5), "test");
        let (tx, rx) = mpsc::channel();
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        // The first job holds the only thread; the second waits in the queue.
        for i in 0..2 {
            let (tx, gate) = (tx.clone(), gate.clone());
            pool.execute(move || {
                if i == 0 {
                    let _g = gate.lock();
                }
                tx.send(i).unwrap();
            })
            .unwrap();
        }
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "one thread, busy"
        );
        pool.set_max(2);
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)),
            Ok(1),
            "a new thread took it"
        );
        assert_eq!(pool.threads(), 2);
        drop(held);
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(0));
        pool.set_max(1);
        // Idle threads notice the lower maximum when they next wake: give them a job each.
        let deadline = Instant::now() + Duration::from_secs(5);
        while pool.threads() > 1 && Instant::now() < deadline {
            let tx = tx.clone();
            pool.execute(move || tx.send(9).unwrap()).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(pool.threads(), 1, "the thread beyond the new maximum ended");
        pool.join();
    }
}
