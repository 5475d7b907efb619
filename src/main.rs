use std::process::ExitCode;

use clap::Parser;

mod bench;
mod cli;
mod echo;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if matches!(cli.command, cli::Command::Serve(_)) {
        tune_allocator();
    }
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("besedka: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

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
fn tune_allocator() {
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
