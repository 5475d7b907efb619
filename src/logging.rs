//! Log setup: human-readable records on standard error, so they never mix with what a
//! command prints on standard output.

use log::LevelFilter;

/// Installs the global logger. Call once, first thing.
pub fn init(level: LevelFilter) -> Result<(), log::SetLoggerError> {
    fern::Dispatch::new()
        .format(|out, message, record| {
            out.finish(format_args!(
                "{} {:<5} {}: {}",
                humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
                record.level(),
                record.target(),
                message
            ))
        })
        .level(level)
        // The pool's own chatter is only interesting when something is wrong.
        .level_for("r2d2", LevelFilter::Warn)
        .chain(std::io::stderr())
        .apply()
}
