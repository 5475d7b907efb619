use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = besedka::cli::Cli::parse();
    if besedka::logging::init(cli.log_level).is_err() {
        eprintln!("besedka: logging was already set up");
    }
    match besedka::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("besedka: {msg}");
            ExitCode::FAILURE
        }
    }
}
