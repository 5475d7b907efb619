//! A throwaway PostgreSQL cluster for one test: `initdb` into a temp dir, `pg_ctl start` on a
//! free loopback port, removed when dropped. Debian's `postgresql` package provides the
//! programs (`.ci/run` installs it); without them a test is skipped, said on stderr
//! ([`super::skip`]), or fails under CI.
//! As root (CI), the cluster runs as the `postgres` user: PostgreSQL refuses to run as root.

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use r2d2_postgres::postgres;

mod standby;

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
    let c = Cluster::empty(bin);
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
    /// A cluster's directory (removed when dropped) and port, nothing in it yet.
    fn empty(bin: PathBuf) -> Cluster {
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
        Cluster {
            dir,
            bin,
            port,
            as_postgres,
        }
    }

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

    /// Stops the server and deletes its files: for a cluster kept in a static, which is never
    /// dropped (each left 40–150 MB in /tmp before).
    pub fn stop_and_remove(&self) {
        self.stop_server();
        let _ = std::fs::remove_dir_all(self.dir.path());
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

/// A certificate authority a test made: its certificate's file, and its key to sign with.
pub struct Ca {
    pub cert: PathBuf,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Ca {
    /// A new CA named `name`, its certificate written to `dir/{name}.pem`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let path = dir.join(format!("{name}.pem"));
        std::fs::write(&path, cert.pem()).unwrap();
        Ca {
            cert: path,
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A server certificate for `names` signed by this CA, and its key, both PEM.
    pub fn sign(&self, names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let params = rcgen::CertificateParams::new(names).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

impl Cluster {
    /// Turns TLS on (`ssl = on`) with a server certificate for 127.0.0.1 and localhost signed
    /// by `ca`, and restarts the server. With `hostssl_only`, TCP connections without TLS are
    /// refused (`hostssl` lines only in `pg_hba.conf`); the socket in [`Cluster::dir`] stays
    /// open to [`Cluster::observer`].
    pub fn enable_tls(&self, ca: &Ca, hostssl_only: bool) {
        let data = PathBuf::from(self.data());
        let (cert, key) = ca.sign(&["127.0.0.1", "localhost"]);
        std::fs::write(data.join("server.crt"), cert).unwrap();
        std::fs::write(data.join("server.key"), key).unwrap();
        let key_file = data.join("server.key");
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        if self.as_postgres {
            let ok = Command::new("chown")
                .arg("postgres:postgres")
                .args([data.join("server.crt"), key_file])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "cannot hand the server's key to the postgres user");
        }
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        writeln!(
            conf,
            "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'"
        )
        .unwrap();
        if hostssl_only {
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
            )
            .unwrap();
        }
        self.stop_server();
        self.start_server();
    }

    /// A client of database `db` through the server's socket, without TLS: to look at the
    /// server as an operator would, apart from the connections under test.
    pub fn observer(&self, db: &str) -> postgres::Client {
        postgres::Config::new()
            .host_path(self.dir.path())
            .port(self.port)
            .user("besedka")
            .dbname(db)
            .connect(postgres::NoTls)
            .unwrap()
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
