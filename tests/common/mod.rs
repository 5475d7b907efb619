//! The test harness: the real binary on 127.0.0.1:0 with a database in a temp dir, and
//! clients on real sockets. Every wait is bounded.

#![allow(dead_code)] // each test file uses a different part

pub mod backend;
pub mod bench;
pub mod expect;
pub mod irc;
pub mod irc_clients;
pub mod pg;
pub mod proxies;
pub mod ssh;
pub mod tls;
pub mod webdriver;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long any single expectation may wait.
pub const WAIT: Duration = Duration::from_secs(10);

/// Whether this run is CI's (`CI=true`, as CI services and `.ci/run`'s callers set it): the
/// one place the tests ask. Under CI a program a test needs is installed (`.ci/run` does it),
/// so its absence fails the test instead of skipping it.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A test, or a part of one (`what`), cannot run here for `why` (a program is missing).
/// Outside CI it says so in one line on the process's standard error: written to file
/// descriptor 2 itself, since libtest captures what the test thread prints (`println!`,
/// `eprintln!`) and shows it only for a failure, which would make a skip look like a pass.
/// Under CI it fails the test ([`under_ci`]). The caller then returns or leaves the part out.
pub fn skip(what: &str, why: &str) {
    if under_ci() {
        panic!("{what}: {why}; CI must run it (.ci/run installs what it needs)");
    }
    // The test's name is its thread's (libtest names each test's thread so), the binary's is
    // its file's without the hash cargo appends.
    let exe = std::env::args().next().unwrap_or_default();
    let exe = Path::new(&exe)
        .file_name()
        .and_then(|f| f.to_str())
        .map(|f| f.rsplit_once('-').map_or(f, |(name, _)| name).to_string())
        .unwrap_or_default();
    let thread = std::thread::current();
    let test = thread.name().filter(|&n| n != "main").unwrap_or("?");
    let line = format!("SKIPPED {what} in {exe}::{test}: {why}\n");
    // SAFETY: write(2) reads `line.len()` bytes from a live buffer; fd 2 may be closed, in
    // which case it fails harmlessly.
    unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_besedka")
}

/// A running `besedka serve`.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// The TLS listener's address, when started with --tls-addr.
    pub tls_addr: Option<SocketAddr>,
    /// The SSH listener's address, when started with --ssh-addr.
    pub ssh_addr: Option<SocketAddr>,
    /// The web listener's, from the startup line (`--web-addr`).
    pub web_addr: Option<SocketAddr>,
    /// The IRC listener's, from the startup line (`--irc-addr`).
    pub irc_addr: Option<SocketAddr>,
    /// The IRC-in-TLS listener's (`--ircs-addr`).
    pub ircs_addr: Option<SocketAddr>,
    pub db: PathBuf,
    pub stdin: Option<ChildStdin>,
    /// Everything the server wrote to stdout after the listening line.
    pub stdout: Arc<Mutex<String>>,
    /// Everything the server logged to stderr so far.
    pub stderr: Arc<Mutex<String>>,
    // Keeps the temp dir alive for the server's lifetime (when the harness made it).
    _dir: Option<tempfile::TempDir>,
}

fn drain(stream: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut r = BufReader::new(stream);
        let mut line = String::new();
        while r.read_line(&mut line).unwrap_or(0) > 0 {
            into.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
}

/// Exempts the test clients' address from the per-address limits, so tests that open many
/// connections or register many users are not refused. The tests of those limits use
/// [`Server::start_strict`].
const ALLOW_LOOPBACK: &[&str] = &["--allow-ip", "127.0.0.0/8"];

impl Server {
    /// A server on a fresh database, with extra `serve` arguments; loopback is exempt from
    /// the per-address limits.
    pub fn start(extra: &[&str]) -> Server {
        Server::start_strict(&[ALLOW_LOOPBACK, extra].concat())
    }

    /// A server with the per-address limits applying to the test clients too: loopback
    /// addresses stand for many clients in these tests, so `--limit-loopback` holds them to
    /// the limits as an operator's clients from elsewhere would be.
    pub fn start_strict(extra: &[&str]) -> Server {
        Server::start_default(&[&["--limit-loopback"], extra].concat())
    }

    /// A server with `serve`'s own defaults and `extra`, nothing added: loopback is exempt
    /// from the per-address limits as it is for an operator (a class on one machine).
    pub fn start_default(extra: &[&str]) -> Server {
        if let Some(url) = backend::fresh_database() {
            return Server::launch(Command::new(bin()), Path::new(&url), extra);
        }
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("besedka.db");
        let mut s = Server::launch(Command::new(bin()), &db, extra);
        s._dir = Some(dir);
        s
    }

    /// A server on the given database file (to test restarts); loopback is exempt.
    pub fn start_on(db: &Path, extra: &[&str]) -> Server {
        Server::launch(Command::new(bin()), db, &[ALLOW_LOOPBACK, extra].concat())
    }

    /// Starts `serve` with `cmd` (which may carry environment or process settings).
    pub fn launch(mut cmd: Command, db: &Path, extra: &[&str]) -> Server {
        let mut child = cmd
            .args(["serve", "--addr", "127.0.0.1:0", "--db"])
            .arg(db)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn besedka");
        let stderr = Arc::new(Mutex::new(String::new()));
        drain(child.stderr.take().unwrap(), stderr.clone());
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).expect("startup line");
        assert!(
            first.starts_with("besedka listening on "),
            "unexpected startup line {first:?}; stderr: {}",
            stderr.lock().unwrap()
        );
        assert!(
            first.contains(&format!("(db: {})", db.display())),
            "{first}"
        );
        let addr = first["besedka listening on ".len()..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .expect("address in startup line");
        // `besedka listening on A (telnet), B (tls), C (ssh) (db: …)`
        let listener = |kind: &str| {
            first
                .split(", ")
                .find(|s| s.contains(&format!(" ({kind})")))
                .and_then(|s| s.split(' ').next())
                .map(|a| a.parse().expect("address in startup line"))
        };
        let (tls_addr, ssh_addr, web_addr) = (listener("tls"), listener("ssh"), listener("web"));
        let (irc_addr, ircs_addr) = (listener("irc"), listener("ircs"));
        let stdout = Arc::new(Mutex::new(String::new()));
        drain(out.into_inner(), stdout.clone());
        let stdin = child.stdin.take();
        Server {
            child,
            addr,
            tls_addr,
            ssh_addr,
            web_addr,
            irc_addr,
            ircs_addr,
            db: db.to_path_buf(),
            stdin,
            stdout,
            stderr,
            _dir: None,
        }
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// A new connection at the `Name: ` prompt once the server has room for it: one it
    /// refuses (closed after its refusal) is tried again, bounded by [`WAIT`]. For a test that
    /// waits until the server has counted a connection's end, which it does just after the
    /// connection closes and logs it (nothing the client can see comes after).
    pub fn connect_when_room(&self) -> Client {
        let start = Instant::now();
        loop {
            let mut c = self.connect();
            match c.prompt_or_refusal() {
                Ok(()) => return c,
                Err(_) if start.elapsed() < WAIT => std::thread::sleep(Duration::from_millis(20)),
                Err(refused) => panic!("still refused after {WAIT:?}: {refused:?}"),
            }
        }
    }

    /// Registers `name` with the one-line form; returns the logged-in client and its token.
    pub fn register(&self, name: &str, password: &str) -> (Client, String) {
        let mut c = self.connect();
        c.expect("Name: ");
        c.send(&format!("/register {name} {password}"));
        let token = c.token();
        c.expect("* In #lobby (");
        c.expect("\r\n");
        (c, token)
    }

    /// Logs in with the one-line form.
    pub fn login(&self, name: &str, password: &str) -> Client {
        let mut c = self.connect();
        c.expect("Name: ");
        c.send(&format!("/login {name} {password}"));
        c.expect("* In #"); // the room they were last in
        c.expect("\r\n");
        c
    }

    /// Waits until stderr (the log) contains `text`.
    pub fn expect_log(&self, text: &str) {
        let start = Instant::now();
        while start.elapsed() < WAIT {
            if self.stderr.lock().unwrap().contains(text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "log never showed {text:?}; log:\n{}",
            self.stderr.lock().unwrap()
        );
    }

    /// Opens the database with the real SQLite (as an operator would) for checks.
    pub fn sql(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(&self.db).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        c
    }

    /// Types a line into the server's console (its standard input).
    pub fn command(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("console open");
        writeln!(stdin, "{line}").expect("write to console");
        stdin.flush().unwrap();
    }

    /// Types a console command and waits for `answer` in its output; returns the output up
    /// to and including it.
    pub fn ask(&mut self, line: &str, answer: &str) -> String {
        self.command(line);
        self.expect_out(answer)
    }

    /// Waits until the console output (stdout) shows `text` after what earlier calls
    /// consumed; returns the output up to and including it.
    pub fn expect_out(&mut self, text: &str) -> String {
        let start = Instant::now();
        while start.elapsed() < WAIT {
            {
                let mut out = self.stdout.lock().unwrap();
                if let Some(at) = out.find(text) {
                    let rest = out.split_off(at + text.len());
                    return std::mem::replace(&mut *out, rest);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "console never printed {text:?}; stdout: {:?}\nlog:\n{}",
            self.stdout.lock().unwrap(),
            self.stderr.lock().unwrap()
        );
    }

    /// Sends a signal to the server process.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        let rc = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits (bounded) for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < WAIT {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server did not exit; log:\n{}", self.stderr.lock().unwrap());
    }

    /// `SELECT count(*) FROM table`.
    pub fn count(&self, table: &str) -> i64 {
        if let Some(mut pg) = backend::client(&self.db) {
            return pg
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .unwrap()
                .get(0);
        }
        self.sql()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    /// The first column of every row `sql` returns, as text.
    pub fn texts(&self, sql: &str) -> Vec<String> {
        if let Some(mut pg) = backend::client(&self.db) {
            return pg
                .query(sql, &[])
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
        }
        let db = self.sql();
        let mut stmt = db.prepare(sql).unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    /// Stops the server the hard way (tests of a clean stop use the console).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client on a real socket. `expect` reads until a text appears; what was read before it
/// is returned, what comes after stays for the next call.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Client::over(TcpStream::connect_timeout(&addr, WAIT).expect("connect"))
    }

    /// A client on a socket the test connected itself (with its own socket options).
    pub fn over(stream: TcpStream) -> Client {
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes());
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Reads whatever arrives; false at EOF.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                true
            }
            Err(_) => false,
        }
    }

    /// Reads until `text` arrives; returns everything up to and including it.
    pub fn expect(&mut self, text: &str) -> String {
        let bytes = self.expect_bytes(text.as_bytes());
        String::from_utf8_lossy(&bytes).into_owned()
    }

    pub fn expect_bytes(&mut self, want: &[u8]) -> Vec<u8> {
        let start = Instant::now();
        loop {
            if let Some(at) = find(&self.buf, want) {
                let rest = self.buf.split_off(at + want.len());
                return std::mem::replace(&mut self.buf, rest);
            }
            if start.elapsed() > WAIT || !self.fill() && find(&self.buf, want).is_none() {
                panic!(
                    "expected {:?}, got {:?}",
                    String::from_utf8_lossy(want),
                    String::from_utf8_lossy(&self.buf)
                );
            }
        }
    }

    /// Everything that arrives within `quiet` of silence (bounded by WAIT in total).
    pub fn drain(&mut self, quiet: Duration) -> String {
        let start = Instant::now();
        let mut last = (Instant::now(), self.buf.len());
        while start.elapsed() < WAIT && last.0.elapsed() < quiet {
            if !self.fill() {
                break;
            }
            if self.buf.len() != last.1 {
                last = (Instant::now(), self.buf.len());
            }
        }
        String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned()
    }

    /// Asserts nothing more arrives within `quiet`.
    /// `/echo off`: its own lines no longer come back (a talker that never reads must
    /// not fill its own backlog).
    pub fn echo_off(&mut self) {
        self.send("/echo off");
        self.expect("* Your lines will not come back to you.\r\n");
    }

    pub fn expect_silence(&mut self, quiet: Duration) {
        let got = self.drain(quiet);
        assert!(got.is_empty(), "expected silence, got {got:?}");
    }

    /// Reads until the `Name: ` prompt (`Ok`) or the server closes the connection (`Err`, with
    /// what it said), bounded by [`WAIT`].
    pub fn prompt_or_refusal(&mut self) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Some(at) = find(&self.buf, b"Name: ") {
                self.buf.drain(..at + b"Name: ".len());
                return Ok(());
            }
            assert!(
                start.elapsed() < WAIT,
                "neither the prompt nor a close; got {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            if !self.fill() {
                return Err(String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned());
            }
        }
    }

    /// Waits for the server to close the connection; returns what came before.
    pub fn expect_closed(&mut self) -> String {
        let start = Instant::now();
        while start.elapsed() < WAIT {
            if !self.fill() {
                return String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned();
            }
        }
        panic!(
            "connection still open; got {:?}",
            String::from_utf8_lossy(&self.buf)
        );
    }

    /// The session token from the login notice.
    pub fn token(&mut self) -> String {
        self.expect("Your session token: ");
        let t = self.expect(";");
        t.trim_end_matches(';').to_string()
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Waits (bounded by `limit`) for the server to close a raw connection (one refused at
/// accept, or cut at a deadline); returns how long it took.
pub fn closed_within(mut sock: TcpStream, limit: Duration) -> Duration {
    let start = Instant::now();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match sock.read(&mut buf) {
            Ok(0) => return start.elapsed(),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return start.elapsed(),
        }
        assert!(start.elapsed() < limit, "still open after {limit:?}");
    }
}

/// A TCP connection to `dst` from the loopback address `src` (any in 127.0.0.0/8), so one
/// test can stand for many client addresses.
pub fn connect_from(src: &str, dst: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    let src: std::net::IpAddr = src.parse().map_err(std::io::Error::other)?;
    sock.bind(&SocketAddr::new(src, 0).into())?;
    sock.connect_timeout(&dst.into(), WAIT)?;
    Ok(sock.into())
}
