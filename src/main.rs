use std::process::ExitCode;

// The allocator comparison in docs/performance.md: `--features jemalloc` or `--features
// mimalloc` builds the server on that allocator instead of glibc's (one at a time). The
// default, glibc's with src/memory.rs's settings, measured best.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bench;
mod cli;
mod echo;

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let result = cli::parse(&argv).and_then(|parsed| {
        if matches!(parsed.cli.command, cli::Command::Serve(_)) {
            besedka::memory::restart_tuned();
        }
        cli::run(parsed, argv)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("besedka: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
