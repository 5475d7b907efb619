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
use std::ops::Range;
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
    /// Most threads at once.
    max: usize,
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
}

impl Pool {
    pub fn new(max: usize, stack: usize, idle: Duration, name: &str) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                work: Condvar::new(),
                max: max.max(1),
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
        if st.threads < self.inner.max {
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

/// Hands back to the system the pages of this thread's stack below the caller's frame;
/// returns the range released, if any.
///
/// A session goes deep once, to log in (SQLite's parser and argon2's bookkeeping touch some
/// 20 KiB of stack), then waits in a shallow read for hours. The kernel keeps every page a
/// thread ever touched, so ten thousand logged-in clients would hold 200 MB of stack they no
/// longer use. Called after the login and after each command; the pages come back, zeroed,
/// if the thread goes deep again.
///
/// The invariant: only whole pages lying entirely more than [`KEEP_BELOW`] bytes below
/// `marker`, a local of this function, are released. The stack grows down, so every frame
/// live on this thread (the caller's and all above it) lies above this function's own
/// frame, hence above `marker`; below it are only the frames of what this function calls.
/// When `madvise` runs, those are this function's own locals below `marker` and the
/// `madvise` wrapper's return address and saved registers (the system call itself runs on
/// the kernel's stack), with x86-64's 128-byte red zone: far less than `KEEP_BELOW`.
/// (`pthread_getattr_np` and `sysconf` have returned by then: their frames are dead.)
/// Two things keep that true:
/// - `#[inline(never)]`: inlined, `marker` would sit somewhere inside the caller's frame,
///   and the caller's locals below it (more than `KEEP_BELOW` of them) would be zeroed;
/// - whole pages of the system's size (`sysconf`): `madvise` rounds the length up to a
///   whole page, so an end rounded down to a smaller assumed page (4096 on a kernel with
///   16 or 64 KiB pages) would be carried up past `marker` into live frames.
#[inline(never)]
pub fn release_unused_stack() -> Option<Range<usize>> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let marker = 0u8;
        // Through black_box, so the local really has an address in this frame.
        let mark = std::hint::black_box(std::ptr::addr_of!(marker)) as usize;
        let range = releasable(mark, this_threads_stack()?, page_size()?)?;
        // SAFETY: `range` is whole pages of this thread's own stack, all below every live
        // frame of this thread (the invariant above). MADV_DONTNEED on private anonymous
        // memory only makes later reads return zeroes, which is what unused stack may hold.
        let rc = unsafe {
            libc::madvise(
                range.start as *mut libc::c_void,
                range.len(),
                libc::MADV_DONTNEED,
            )
        };
        (rc == 0).then_some(range)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}

/// Stack kept below the mark of [`release_unused_stack`]: room for its own locals and the
/// frame of `madvise` while it runs.
const KEEP_BELOW: usize = 1024;

/// The whole pages (of `page` bytes) of `stack` that lie more than [`KEEP_BELOW`] below
/// `mark`; `None` if there are none, or `mark` is not on `stack`.
#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
fn releasable(mark: usize, stack: Range<usize>, page: usize) -> Option<Range<usize>> {
    if !page.is_power_of_two() || !stack.contains(&mark) {
        return None;
    }
    let start = stack.start.checked_next_multiple_of(page)?;
    let end = mark.checked_sub(KEEP_BELOW)? / page * page;
    (start < end).then_some(start..end)
}

/// The system's page size, which `madvise` works in.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn page_size() -> Option<usize> {
    // SAFETY: sysconf only reads a system setting.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page).ok().filter(|p| p.is_power_of_two())
}

/// This thread's stack: its lowest usable address to its top.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn this_threads_stack() -> Option<Range<usize>> {
    // SAFETY: `attr` is initialised by pthread_getattr_np before it is read, and destroyed
    // once; the stack bounds are plain values.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut low: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let got = libc::pthread_attr_getstack(&attr, &mut low, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        let low = low as usize;
        (got == 0).then(|| low..low.saturating_add(size))
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
            release_unused_stack();
            let b = deep(100);
            tx.send(a == b).unwrap();
        })
        .unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(true));
        pool.join();
    }

    /// Whatever the page size, only whole pages go, all of them more than KEEP_BELOW under
    /// the mark: `madvise` rounds the length up to a whole page, so an end that is not on a
    /// page boundary would release the rest of its page, above the mark.
    #[test]
    fn only_whole_pages_of_the_given_size_below_the_mark_are_released() {
        let stack = 0x7f00_0000_0000..0x7f00_0010_0000; // 1 MiB, 64 KiB aligned
        for page in [4096, 16 * 1024, 64 * 1024] {
            for offset in [3 * 65536 + 100, 5 * 65536 + 4096 + 7, 9 * 65536 + 12345] {
                let mark = stack.start + offset;
                let r = releasable(mark, stack.clone(), page)
                    .unwrap_or_else(|| panic!("nothing released at {offset} with {page}"));
                assert_eq!(r.start % page, 0, "start off a {page}-byte page");
                assert_eq!(r.end % page, 0, "end off a {page}-byte page");
                assert!(r.start >= stack.start, "below the stack");
                assert!(r.end + KEEP_BELOW <= mark, "too close to the mark");
                assert!(
                    mark - r.end < KEEP_BELOW + page,
                    "kept more than a page extra"
                );
            }
        }
        // Nothing when the mark is not on the stack or too near its bottom.
        assert_eq!(releasable(stack.end, stack.clone(), 4096), None);
        assert_eq!(releasable(stack.start - 1, stack.clone(), 4096), None);
        assert_eq!(releasable(stack.start + 4096, stack.clone(), 4096), None);
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
            let page = page_size().unwrap();
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
            let released = release_unused_stack();
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
        let page = page_size().unwrap();
        assert_eq!((released.start % page, released.end % page), (0, 0));
        assert!(
            released.end + KEEP_BELOW <= mine_at,
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
}
