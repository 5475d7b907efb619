//! Rereading the config file on a running server (`SIGHUP`, the console's `reload`): the
//! command line is parsed again with the file under it, as at start, and what changed is put
//! in force, or named as needing a restart.
//!
//! A reload also rereads the TLS certificate and key even when their paths are unchanged:
//! ACME clients renew them in place.

use std::ffi::OsString;
use std::time::SystemTime;

use clap::ArgMatches;

use super::config_file::{self, FileArgs};
use super::Command;
use besedka::server::Server;

/// Options a running server cannot change: they name what it bound or opened at start.
/// Every other option a reload puts in force (new connections and logins take it; see
/// docs/service.md).
pub const NEEDS_RESTART: &[&str] = &[
    "addr",
    "tls-addr",
    "ssh-addr",
    "ssh-host-key",
    "web-addr",
    "irc-addr",
    "ircs-addr",
    "irc-ping",
    "db",
    "sync",
    "state-dir",
    "log-file",
    "no-console",
    "allow-shared-db",
    "worker-idle",
];

/// Where the running settings came from, for `reload` and `status`.
pub struct Origin {
    /// The process's arguments: a reload parses them again (they still win over the file).
    argv: Vec<OsString>,
    /// `serve`'s options as the server started with them.
    started: Option<ArgMatches>,
    /// `serve`'s options as last put in force.
    current: Option<ArgMatches>,
    file: Option<FileArgs>,
    loaded: SystemTime,
}

impl Origin {
    pub fn new(argv: Vec<OsString>, serve: Option<ArgMatches>, file: Option<FileArgs>) -> Origin {
        Origin {
            argv,
            started: serve.clone(),
            current: serve,
            file,
            loaded: SystemTime::now(),
        }
    }

    /// For `status`: the file and when it was read.
    pub fn describe(&self) -> String {
        match &self.file {
            Some(f) => format!(
                "{} ({} setting(s)), loaded {}",
                f.path.display(),
                f.keys,
                humantime::format_rfc3339_seconds(self.loaded)
            ),
            None => "none (options from the command line and environment)".into(),
        }
    }

    /// Rereads the file and puts what changed in force; returns what happened, in one line
    /// (also logged). A file that does not parse, or a certificate that does not load,
    /// leaves every running setting as it was.
    pub fn reload(&mut self, server: &Server) -> String {
        let said = self.try_reload(server);
        match &said {
            Ok(line) => log::info!("{line}"),
            Err(line) => log::warn!("{line}"),
        }
        said.unwrap_or_else(|e| e)
    }

    fn try_reload(&mut self, server: &Server) -> Result<String, String> {
        let Some(path) = self.file.as_ref().map(|f| f.path.clone()) else {
            return Err("nothing to reload: the server was started without --config FILE".into());
        };
        let kept = "; the running settings stay";
        let parsed = config_file::parse_command_line(&self.argv)
            .map_err(|f| format!("config not reloaded: {}{kept}", f.message))?;
        let (Command::Serve(args), Some(now)) = (parsed.cli.command, parsed.serve) else {
            return Err(format!(
                "config not reloaded: {} is not serve's{kept}",
                path.display()
            ));
        };
        let changed = match &self.current {
            Some(before) => config_file::changed(before, &now),
            None => Vec::new(),
        };
        let restart: Vec<String> = match &self.started {
            Some(started) => config_file::changed(started, &now)
                .into_iter()
                .filter(|k| NEEDS_RESTART.contains(&k.as_str()))
                .collect(),
            None => Vec::new(),
        };
        server
            .reconfigure(args.config(), &args.ways)
            .map_err(|e| format!("config not reloaded: {e}{kept}"))?;
        log::set_max_level(parsed.cli.log_level);
        self.current = Some(now);
        self.file = parsed.file;
        self.loaded = SystemTime::now();
        let live: Vec<&str> = changed
            .iter()
            .map(String::as_str)
            .filter(|k| !NEEDS_RESTART.contains(k))
            .collect();
        let mut line = format!("config reloaded from {}: ", path.display());
        line += &if live.is_empty() {
            "no setting changed".to_string()
        } else {
            format!("changed {}", live.join(", "))
        };
        // Reread whatever the paths: an ACME renewal changes the files, not the settings.
        if server
            .listening()
            .iter()
            .any(|(way, _)| matches!(*way, "tls" | "ircs"))
        {
            line += "; TLS certificate and key reread";
        }
        if !restart.is_empty() {
            line += &format!(
                "; {} need(s) a restart to change (the running value stays)",
                restart.join(", ")
            );
        }
        Ok(line)
    }
}
