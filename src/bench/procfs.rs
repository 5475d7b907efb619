//! A process's CPU time, memory, threads and open files, read from `/proc/PID` (Linux).
//!
//! CPU time comes from `stat` (user + system, in clock ticks, threads that ended included);
//! memory from `status` (`VmRSS` now, `VmHWM` the peak since the process started).

use std::fs;
use std::io;

/// One reading.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// User + system CPU time so far, in seconds.
    pub cpu_seconds: f64,
    /// Resident memory now, in bytes.
    pub rss: u64,
    /// The most resident memory the process ever had, in bytes.
    pub rss_peak: u64,
    pub threads: u64,
    pub open_fds: u64,
}

/// Reads `/proc/PID/{stat,status,fd}`.
pub fn sample(pid: u32) -> io::Result<Sample> {
    let dir = format!("/proc/{pid}");
    let cpu_seconds = cpu_seconds(&fs::read_to_string(format!("{dir}/stat"))?)?;
    let status = fs::read_to_string(format!("{dir}/status"))?;
    let open_fds = fs::read_dir(format!("{dir}/fd"))?.count() as u64;
    Ok(Sample {
        cpu_seconds,
        rss: kib(&status, "VmRSS:") * 1024,
        rss_peak: kib(&status, "VmHWM:") * 1024,
        threads: kib(&status, "Threads:"),
        open_fds,
    })
}

/// The CPU seconds in a `stat` line: fields 14 (utime) and 15 (stime), counted after the
/// command name, which is in parentheses and may itself hold spaces and parentheses.
fn cpu_seconds(stat: &str) -> io::Result<f64> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "unexpected /proc stat format");
    let after = stat.rfind(')').ok_or_else(bad)?;
    let fields: Vec<&str> = stat[after + 1..].split_whitespace().collect();
    // fields[0] is field 3 (the state).
    let ticks = |n: usize| -> io::Result<u64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(bad)
    };
    let total = ticks(14)? + ticks(15)?;
    Ok(total as f64 / clock_ticks())
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// The number after `key` in a `status` file (`VmRSS:   1234 kB`); 0 when absent (a kernel
/// thread has no `VmRSS`).
fn kib(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_tricky_name() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
        let secs = cpu_seconds(line).unwrap();
        assert!((secs - 300.0 / clock_ticks()).abs() < 1e-9, "{secs}");
    }

    #[test]
    fn this_process_can_be_read() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss > 0 && s.rss_peak >= s.rss);
        assert!(s.threads >= 1 && s.open_fds >= 1);
    }
}
