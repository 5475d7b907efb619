use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match besedka::cli::run(besedka::cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("besedka: {msg}");
            ExitCode::FAILURE
        }
    }
}
