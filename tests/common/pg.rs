//! A throwaway PostgreSQL cluster for one test: `initdb` into a temp dir, `pg_ctl start` on a
//! free loopback port, removed when dropped. Debian's `postgresql` package provides the
//! programs (`.ci/run` installs it); without them a test is skipped, said on stderr
//! ([`super::skip`]), or fails under CI.
//! As root (CI), the cluster runs as the `postgres` user: PostgreSQL refuses to run as root.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    /// Run the programs through `runuser -u postgres` (we are root).
    as_postgres: bool,
}

/// Where Debian puts the newest installed PostgreSQL's programs.
fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop()
}

/// A new cluster, or why there can be none here (the caller skips: [`super::skip`]).
pub fn start() -> Result<Cluster, String> {
    let Some(bin) = bin_dir() else {
        return Err("PostgreSQL is not installed (apt-get install postgresql)".to_string());
    };
    // SAFETY: geteuid has no preconditions.
    let as_postgres = unsafe { libc::geteuid() } == 0;
    let dir = tempfile::tempdir().unwrap();
    if as_postgres {
        let ok = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "cannot hand the cluster's directory to the postgres user"
        );
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = Cluster {
        dir,
        bin,
        port,
        as_postgres,
    };
    let data = c.data();
    c.run(
        "initdb",
        &[
            "-D",
            &data,
            "-A",
            "trust",
            "-U",
            "besedka",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ],
    );
    c.start_server();
    Ok(c)
}

/// A new cluster with a database `name` in it and its URL, or `None` after saying on stderr
/// that the test is skipped (under CI: failing it).
pub fn database_or_skip(name: &str) -> Option<(Cluster, String)> {
    match start() {
        Ok(c) => {
            let url = c.database(name);
            Some((c, url))
        }
        Err(why) => {
            super::skip("the test", &why);
            None
        }
    }
}

impl Cluster {
    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
        assert!(
            out.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server and waits until it takes connections.
    pub fn start_server(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-o", &opts, "-l", &log, "-w", "start"],
        );
    }

    /// Stops the server at once (clients are cut, as in a crash or a restart).
    pub fn stop_server(&self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    /// Makes a database and returns its URL.
    pub fn database(&self, name: &str) -> String {
        self.run(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "besedka",
                name,
            ],
        );
        self.url(name)
    }

    pub fn url(&self, name: &str) -> String {
        format!("postgres://besedka@127.0.0.1:{}/{name}", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let exe = self.bin.join("pg_ctl");
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let _ = cmd
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
