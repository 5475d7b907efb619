//! The memory policy, in one place: how the server keeps its footprint near what it uses with
//! glibc's allocator and thread stacks. Four measures, each measured (docs/performance.md):
//!
//! - [`restart_tuned`]: `serve` restarts itself once with glibc's per-thread cache of freed
//!   blocks off and the stack cache bounded (settings glibc reads only at start);
//! - [`return_large_blocks`]: blocks of 1 MiB or more (argon2's) go back to the system when
//!   freed, and a few arenas serve thousands of threads;
//! - [`give_back`]: the janitor returns free arena pages every two seconds;
//! - [`release_unused_stack`]: a session hands back the stack pages its login used.
//!
//! All four are glibc-on-Linux only; elsewhere they do nothing.

use std::ops::Range;

/// Marks a process that has already been started with the allocator settings below.
const TUNED: &str = "BESEDKA_MALLOC_TUNED";

/// Restarts the server (same process id, same arguments and descriptors: `exec`) with
/// glibc's per-thread cache of freed blocks (tcache) off.
///
/// Each thread keeps up to seven freed blocks of every small size for itself, and a session
/// thread that logged in (a token check, the history, a log line) keeps about 13 KiB of them
/// for as long as its client stays: measured with 1,000 logged-in clients, 29.5 KiB per
/// client with the cache, 12.5 KiB without. glibc reads this setting only at start
/// (`GLIBC_TUNABLES`), not from `mallopt`, hence the restart. If it fails (the executable
/// was replaced on disk) the server runs on with the cache.
pub fn restart_tuned() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        if std::env::var_os(TUNED).is_some() {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        if !tunables.is_empty() {
            tunables.push(':');
        }
        tunables.push_str("glibc.malloc.tcache_count=0:glibc.pthread.stack_cache_size=4194304");
        let err = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env("GLIBC_TUNABLES", tunables)
            .env(TUNED, "1")
            .exec();
        eprintln!("besedka: note: running with glibc's thread cache ({err})");
    }
}

/// Makes glibc hand every allocation of 1 MiB or more back to the OS when it is freed.
/// Each argon2 hash takes a 19 MiB block; by default glibc raises its mmap threshold after
/// the first one is freed, and later blocks stay resident in its per-thread arenas: 30
/// logins grew the server from 17 MB to 370 MB. Fixing the threshold turns that off.
pub fn return_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before the server's threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        // Thousands of session threads would otherwise spread over 8 arenas per core, each
        // holding its own free pages; a few arenas keep the footprint near what is in use.
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

/// Returns free memory in the allocator's arenas to the system. After a burst (many clients
/// queueing lines at once, each session thread allocating in its own arena) glibc keeps the
/// freed pages; without this a server that once held 400 MB for a second keeps them. A walk
/// of a few arenas every two seconds, well under a millisecond when there is nothing to give.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
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
pub(crate) const KEEP_BELOW: usize = 1024;

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
pub(crate) fn page_size() -> Option<usize> {
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
}
