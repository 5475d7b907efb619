use std::process::ExitCode;

use clap::Parser;

mod bench;
mod cli;
mod echo;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if matches!(cli.command, cli::Command::Serve(_)) {
        besedka::memory::restart_tuned();
    }
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("besedka: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
