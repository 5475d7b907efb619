//! What each client costs the server, read from /proc: descriptors and threads; the
//! durability mode; the hub's rules that keep many clients cheap (send timeout, joins off the
//! hub, coalesced notices). Performance itself is measured by `besedka bench`, not here.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Server};

fn fds(server: &Server) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", server.child.id()))
        .unwrap()
        .count()
}

/// The inode of the server's socket for the connection from local port `client`
/// (`/proc/PID/net/tcp`), to tell when the server has closed it.
fn server_socket(server: &Server, client: &Client) -> String {
    let (port, from) = (
        server.addr.port(),
        client.stream.local_addr().unwrap().port(),
    );
    let tcp = std::fs::read_to_string(format!("/proc/{}/net/tcp", server.child.id())).unwrap();
    let port_of = |addr: &str| u16::from_str_radix(addr.rsplit(':').next().unwrap(), 16).unwrap();
    tcp.lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| port_of(f[1]) == port && port_of(f[2]) == from)
        .map(|f| format!("socket:[{}]", f[9]))
        .unwrap_or_else(|| panic!("no server socket for port {from}:\n{tcp}"))
}

/// Whether the server still holds `socket` (one of its descriptors points to it).
fn holds(server: &Server, socket: &str) -> bool {
    std::fs::read_dir(format!("/proc/{}/fd", server.child.id()))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .any(|target| target.as_os_str() == socket)
}

fn threads(server: &Server) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Waits (bounded) until `f` holds.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(15), "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_logged_in_client_holds_one_file_descriptor() {
    let server = Server::start(&["--max-sessions-per-user", "100"]);
    // Warm up: the pool's database connections open on first use.
    let (mut first, token) = server.register("warm", "password1");
    let first_socket = server_socket(&server, &first);
    assert!(
        holds(&server, &first_socket),
        "{first_socket} is the server's"
    );
    first.send("/quit");
    first.expect_closed();
    let mut again = server.connect();
    again.expect("Name: ");
    again.send(&format!("/token {token}"));
    again.expect("* In #lobby (");
    let again_socket = server_socket(&server, &again);
    drop(again);
    // Counted once both warm-up connections are closed on the server's side too.
    eventually("the warm-up sockets closed", || {
        !holds(&server, &first_socket) && !holds(&server, &again_socket)
    });
    let before = fds(&server);
    let mut clients: Vec<Client> = Vec::new();
    for _ in 0..20 {
        let mut c = server.connect();
        c.expect("Name: ");
        c.send(&format!("/token {token}"));
        c.expect("* In #lobby (");
        clients.push(c);
    }
    let after = fds(&server);
    // One socket each (it was four before: the socket and three duplicates); a little room
    // for a database connection the pool may open meanwhile.
    assert!(
        (20..=23).contains(&(after - before)),
        "{before} descriptors before 20 logins, {after} after"
    );
}

#[test]
fn worker_threads_start_with_clients_and_end_when_idle() {
    let mut server = Server::start(&["--max-clients", "5000", "--worker-idle", "1s"]);
    // The console answers once its threads (signals, stdin) run: all an idle server has.
    server.ask("status", "session threads:");
    let idle = threads(&server);
    assert!(
        idle < 20,
        "{idle} threads in an idle server with --max-clients 5000"
    );
    let mut clients: Vec<Client> = (0..30).map(|_| server.connect()).collect();
    for c in &mut clients {
        c.expect("Name: ");
    }
    assert!(threads(&server) >= idle + 30, "one thread per client");
    drop(clients);
    eventually("threads back to the idle count", || {
        threads(&server) <= idle
    });
}

#[test]
fn status_shows_the_durability_the_database_reports() {
    let mut full = Server::start(&[]);
    full.ask("status", "session threads:");
    // Read back through a pooled connection (PRAGMA synchronous), not from the flag.
    let out = full.ask("status", "session threads:");
    assert!(out.contains("(sync: full)"), "{out}");
    let mut normal = Server::start(&["--sync", "normal"]);
    let out = normal.ask("status", "session threads:");
    assert!(out.contains("(sync: normal)"), "{out}");
    let bad = std::process::Command::new(common::bin())
        .args(["serve", "--sync", "sometimes"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("use full or normal"));
}

#[test]
fn a_client_that_takes_nothing_for_the_send_timeout_is_cut_off() {
    let server = Server::start(&[
        "--send-timeout",
        "2s",
        "--max-rate",
        "10000",
        "--max-backlog",
        "16777216",
    ]);
    let (mut talker, _) = server.register("talker", "password1");
    talker.echo_off(); // it does not read while it talks
    server.register("sleeper", "password1");
    // A reader with a small receive window (set before connecting) that never reads.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&server.addr.into()).unwrap();
    let mut sleeper = Client::over(sock.into());
    sleeper.expect("Name: ");
    sleeper.send("/login sleeper password1");
    sleeper.expect("* In #lobby (");
    let line = "x".repeat(1000);
    // 8 MB: more than the kernel's buffers take (the send buffer grows to 4 MB here), far
    // under --max-backlog.
    for i in 0..8000 {
        talker.send(&format!("{i} {line}"));
    }
    server.expect_log("disconnecting sleeper");
    server.expect_log("nothing taken for 2 s");
    // The talker is still served, and once the sleeper's session has ended the hub forgets
    // it (asked until then: the cut and the session's end are two steps).
    let start = std::time::Instant::now();
    loop {
        talker.send("/who");
        talker.expect("* In #lobby (");
        let rest = talker.expect("\r\n");
        if rest.starts_with("1): talker") {
            break;
        }
        assert!(start.elapsed() < common::WAIT, "the sleeper stayed: {rest}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = sleeper.drain(Duration::from_millis(100));
}

#[test]
fn lines_said_during_a_login_are_neither_lost_nor_shown_twice() {
    let server = Server::start(&["--max-rate", "1000", "--history", "500"]);
    let (mut talker, _) = server.register("talker", "password1");
    let (_, token) = server.register("reader", "password1");
    let sender = std::thread::spawn(move || {
        for i in 0..300 {
            talker.send(&format!("n{i}"));
            if i % 50 == 0 {
                // Not a wait for anything: spreads the lines over the reader's login.
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        talker.send("/who"); // answered after every line above was committed
        talker.expect("* In #lobby (");
        talker
    });
    // Log in while the lines flow: history up to the watermark, live lines after it.
    let mut reader = server.connect();
    reader.expect("Name: ");
    reader.send(&format!("/token {token}"));
    let mut seen = reader.expect("talker: n299\r\n");
    seen.push_str("299");
    let _talker = sender.join().unwrap();
    let numbers: Vec<u32> = seen
        .split("talker: n")
        .skip(1)
        .map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().unwrap()
        })
        .collect();
    assert_eq!(
        numbers,
        (0..300).collect::<Vec<u32>>(),
        "every line once, in order, across history and live lines"
    );
}

/// The server's thread named `name`, by its id (`/proc/PID/task/TID/comm`).
fn thread_id(server: &Server, name: &str) -> i32 {
    let tasks = format!("/proc/{}/task", server.child.id());
    std::fs::read_dir(&tasks)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .and_then(|e| e.file_name().to_str()?.parse().ok())
        .unwrap_or_else(|| panic!("no thread named {name} in {tasks}"))
}

/// Holds one thread of the server still (ptrace: seized and interrupted; the rest of the
/// process runs on) until dropped.
struct Held(i32);

impl Held {
    fn thread(tid: i32) -> Held {
        // SAFETY: ptrace and waitpid on a thread of our own child; no memory is shared.
        unsafe {
            let null = std::ptr::null_mut::<libc::c_void>();
            let seized = libc::ptrace(libc::PTRACE_SEIZE, tid, null, null);
            assert_eq!(
                seized,
                0,
                "ptrace seize: {}",
                std::io::Error::last_os_error()
            );
            let stopped = libc::ptrace(libc::PTRACE_INTERRUPT, tid, null, null);
            assert_eq!(
                stopped,
                0,
                "ptrace interrupt: {}",
                std::io::Error::last_os_error()
            );
            let mut status = 0;
            let waited = libc::waitpid(tid, &mut status, libc::__WALL);
            assert_eq!(waited, tid, "waitpid: {}", std::io::Error::last_os_error());
        }
        Held(tid)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // SAFETY: as above; detaching resumes the thread.
        unsafe {
            let null = std::ptr::null_mut::<libc::c_void>();
            libc::ptrace(libc::PTRACE_DETACH, self.0, null, null);
        }
    }
}

#[test]
fn a_storm_of_joins_is_announced_in_few_lines_and_none_is_lost() {
    let server = Server::start(&[]);
    let (mut watcher, _) = server.register("watcher", "password1");
    let tokens: Vec<String> = (0..20)
        .map(|i| {
            let (c, token) = server.register(&format!("storm{i}"), "password1");
            drop(c);
            token
        })
        .collect();
    // Their leaves first, so the watcher's count below starts clean.
    watcher.send("/who");
    eventually("the registrations left", || {
        watcher
            .drain(Duration::from_millis(200))
            .contains("In #lobby (1)")
            || {
                watcher.send("/who");
                false
            }
    });
    let mut clients: Vec<Client> = tokens
        .iter()
        .map(|_| {
            let mut c = server.connect();
            c.expect("Name: ");
            c
        })
        .collect();
    // A storm, as after a restart: the joins come faster than the hub takes them. Here the
    // hub is held still while the twenty log in, so all of their joins wait in its queue and
    // it takes them in one batch; unheld, it would take each as it comes (one line each).
    let hub = Held::thread(thread_id(&server, "hub"));
    for (c, token) in clients.iter_mut().zip(&tokens) {
        c.send(&format!("/token {token}"));
    }
    for (i, c) in clients.iter_mut().enumerate() {
        c.expect(&format!("* Hello, storm{i}!"));
    }
    // Each session logs its login just before it hands the hub its join.
    eventually("twenty logins logged", || {
        server
            .stderr
            .lock()
            .unwrap()
            .matches("logged in (token")
            .count()
            == 20
    });
    drop(hub);
    for c in &mut clients {
        c.expect("* In #lobby (");
    }
    watcher.send("/who");
    let seen = watcher.expect("* In #lobby (21)");
    let (mut joined, mut lines, mut crowds) = (0, 0, 0);
    for line in seen.lines() {
        if let Some(n) = line
            .strip_prefix("* ")
            .and_then(|l| l.strip_suffix(" people joined"))
        {
            joined += n.parse::<usize>().unwrap();
            lines += 1;
            crowds += 1;
        } else if line.starts_with("* storm") && line.ends_with(" joined") {
            joined += 1;
            lines += 1;
        }
    }
    assert_eq!(joined, 20, "every arrival counted once: {seen}");
    // One line for the batch (a session still between its log line and its join when the
    // hub went on would come in a line of its own, a batch later).
    assert!(
        crowds >= 1 && lines <= 3,
        "twenty joins in one batch announced in {lines} line(s): {seen}"
    );
}
