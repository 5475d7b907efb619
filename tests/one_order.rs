//! One order for every way in: a telnet user, an SSH user (the real OpenSSH client), a web
//! user (a WebSocket) and two IRC clients in `#lobby`, all talking at once, each see the
//! others' lines in one order, and it is `messages.id`'s; on SQLite and on PostgreSQL.
//!
//! Needs `ssh` on PATH; without it the test is skipped (said on stderr), except under CI,
//! where it fails: `.ci/run` installs openssh-client.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::{expect, irc, Client, Server, WAIT};
use tungstenite::{Message, WebSocket};

/// Lines each of the five sends: twice `--max-rate`'s 20, one burst, so none is held back.
const PER: usize = 40;
const PASSWORD: &str = "secret12";

/// One user on one way in: it says lines and reads what the others said.
trait Way: Send {
    /// The account, which is also the start of each of its lines: `NAME-N`.
    fn name(&self) -> &str;
    fn say(&mut self, body: &str);
    /// The next line of chat (author, body), skipping everything else (joins, notices,
    /// echoes), or why none came.
    fn next_chat(&mut self, until: Instant) -> Result<(String, String), String>;
    /// Whether its own lines come back to it (a terminal with `/echo` on: telnet, SSH).
    fn echoes(&self) -> bool {
        false
    }
}

/// `[HH:MM:SS] NAME: TEXT` (docs/protocol.md), the same over telnet, SSH and the WebSocket.
fn chat_line(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('[')?;
    let (time, rest) = rest.split_once("] ")?;
    let clock = time.len() == 8 && time.bytes().all(|b| b.is_ascii_digit() || b == b':');
    let (name, body) = rest.split_once(": ")?;
    (clock && !name.contains(' ')).then(|| (name.to_string(), body.to_string()))
}

struct Telnet {
    name: String,
    client: Client,
}

impl Way for Telnet {
    fn echoes(&self) -> bool {
        true
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn say(&mut self, body: &str) {
        self.client.send(body);
    }
    fn next_chat(&mut self, until: Instant) -> Result<(String, String), String> {
        while Instant::now() < until {
            // Bounded by WAIT: Client::expect panics with what it got instead.
            let line = self.client.expect("\r\n");
            if let Some(chat) = chat_line(line.trim_end()) {
                return Ok(chat);
            }
        }
        Err("deadline".into())
    }
}

/// The real OpenSSH client with pipes for its standard input and output (`-T`, no pty), as a
/// script would use it: the server's line editor still echoes what is typed and redraws it
/// under incoming lines, so a chat line is what follows the last erase (`\r\x1b[K`) on its
/// terminal line.
struct Ssh {
    name: String,
    child: Child,
    stdin: ChildStdin,
    out: Receiver<Vec<u8>>,
    buf: Vec<u8>,
    /// Terminal lines that were neither chat, a notice nor the echo of its own typing: a
    /// torn line shows up here, and in the failure message.
    odd: Vec<String>,
}

impl Ssh {
    fn connect(port: u16, name: &str) -> Ssh {
        let mut child = Command::new("ssh")
            .args([
                "-T",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
            ])
            .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
            .args(["-o", "PubkeyAuthentication=no", "-p", &port.to_string()])
            .arg("nobody@127.0.0.1") // not an account: offered to register, declined below
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ssh");
        let (stdin, mut stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
        let (tx, out) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n @ 1..) = stdout.read(&mut chunk) {
                if tx.send(chunk[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut ssh = Ssh {
            name: name.to_string(),
            child,
            stdin,
            out,
            buf: Vec::new(),
            odd: Vec::new(),
        };
        ssh.wait_for("Password: ");
        ssh.say(""); // not nobody: Enter gives another name
        ssh.wait_for("Name: ");
        ssh.say(&format!("/register {name} {PASSWORD}"));
        ssh.wait_for("* In #lobby (");
        ssh.wait_for("\r\n");
        ssh
    }

    /// Reads more, until `until`; false at the deadline.
    fn fill(&mut self, until: Instant) -> bool {
        let left = until.saturating_duration_since(Instant::now());
        match self.out.recv_timeout(left) {
            Ok(bytes) => {
                self.buf.extend_from_slice(&bytes);
                true
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => panic!(
                "ssh ended; it showed {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    fn wait_for(&mut self, text: &str) {
        let until = Instant::now() + WAIT;
        while common::find(&self.buf, text.as_bytes()).is_none() {
            assert!(
                self.fill(until),
                "ssh never showed {text:?}; it showed {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
        let at = common::find(&self.buf, text.as_bytes()).unwrap();
        self.buf.drain(..at + text.len());
    }
}

impl Way for Ssh {
    fn echoes(&self) -> bool {
        true
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn say(&mut self, body: &str) {
        self.stdin
            .write_all(format!("{body}\n").as_bytes())
            .expect("write to ssh");
    }
    fn next_chat(&mut self, until: Instant) -> Result<(String, String), String> {
        loop {
            while let Some(at) = common::find(&self.buf, b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..at + 2).collect();
                let line = String::from_utf8_lossy(&line[..at]).into_owned();
                let shown = line.rsplit("\r\x1b[K").next().unwrap_or_default();
                if let Some(chat) = chat_line(shown) {
                    return Ok(chat);
                }
                if !shown.starts_with("* ") && !shown.starts_with(&format!("{}-", self.name)) {
                    self.odd.push(line);
                }
            }
            if !self.fill(until) {
                return Err(format!(
                    "deadline; ssh showed {:?} since, and these lines that are not chat: {:?}",
                    String::from_utf8_lossy(&self.buf),
                    self.odd
                ));
            }
        }
    }
}

impl Drop for Ssh {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The web page's WebSocket: one text frame per line.
struct Web {
    name: String,
    ws: WebSocket<TcpStream>,
    /// The id in front of the last chat line (the page's, hidden): they only grow.
    last_id: i64,
}

impl Web {
    fn connect(server: &Server, name: &str) -> Web {
        let addr = server
            .web_addr
            .expect("the web listener in the startup line");
        let stream = TcpStream::connect_timeout(&addr, WAIT).expect("connect to the web port");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let (ws, _) = tungstenite::client(format!("ws://{addr}/ws"), stream).expect("handshake");
        let mut web = Web {
            name: name.to_string(),
            ws,
            last_id: 0,
        };
        web.frame_starting("Name: ");
        web.say(&format!("/register {name} {PASSWORD}"));
        web.frame_starting("* In #lobby (");
        web
    }

    fn frame(&mut self) -> Result<String, String> {
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => return Ok(t.to_string()),
                Ok(Message::Close(c)) => return Err(format!("closed: {c:?}")),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    fn frame_starting(&mut self, start: &str) {
        let until = Instant::now() + WAIT;
        while Instant::now() < until {
            match self.frame() {
                Ok(f) if f.starts_with(start) => return,
                Ok(_) => {}
                Err(e) => panic!("web: waiting for {start:?}: {e}"),
            }
        }
        panic!("web: no frame starting {start:?}");
    }
}

impl Way for Web {
    fn name(&self) -> &str {
        &self.name
    }
    fn say(&mut self, body: &str) {
        self.ws.send(Message::text(body)).expect("send a frame");
    }
    fn next_chat(&mut self, until: Instant) -> Result<(String, String), String> {
        while Instant::now() < until {
            // The page's chat lines carry their ids in front (`\u{1}ID `), in the one order.
            let frame = self.frame()?;
            let Some((id, line)) = frame
                .strip_prefix('\u{1}')
                .and_then(|f| f.split_once(' '))
                .and_then(|(id, line)| Some((id.parse::<i64>().ok()?, line)))
            else {
                assert!(
                    chat_line(&frame).is_none(),
                    "a chat line without its id: {frame:?}"
                );
                continue;
            };
            if let Some(chat) = chat_line(line) {
                assert!(
                    id > self.last_id,
                    "id {id} after {}: {frame:?}",
                    self.last_id
                );
                self.last_id = id;
                return Ok(chat);
            }
        }
        Err("deadline".into())
    }
}

/// An IRC client (tests/common/irc.rs) logged in with SASL PLAIN.
struct Irc {
    name: String,
    client: Client,
}

impl Way for Irc {
    fn name(&self) -> &str {
        &self.name
    }
    fn say(&mut self, body: &str) {
        self.client.send(&format!("PRIVMSG #lobby :{body}"));
    }
    fn next_chat(&mut self, until: Instant) -> Result<(String, String), String> {
        while Instant::now() < until {
            let line = self.client.expect("\r\n");
            // :NICK!USER@HOST PRIVMSG #lobby :TEXT
            let Some((prefix, rest)) = line.trim_end().split_once(' ') else {
                continue;
            };
            let Some(body) = rest.strip_prefix("PRIVMSG #lobby :") else {
                continue;
            };
            let nick = prefix.trim_start_matches(':').split('!').next().unwrap();
            return Ok((nick.to_string(), body.to_string()));
        }
        Err("deadline".into())
    }
}

#[test]
fn telnet_ssh_web_and_two_irc_clients_see_one_order_equal_to_the_database() {
    if !expect::have("one order over every way in", &["ssh"], "openssh-client") {
        return;
    }
    common::backend::on_each_backend(one_order);
}

/// The test's body, once per backend.
fn one_order() {
    // The host key in a temp dir of its own: on PostgreSQL there is no database file to put
    // it beside.
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("host_key");
    let server = Server::start(&[
        "--ssh-addr",
        "127.0.0.1:0",
        "--ssh-host-key",
        key.to_str().unwrap(),
        "--web-addr",
        "127.0.0.1:0",
        "--irc-addr",
        "127.0.0.1:0",
    ]);
    let ssh_port = server.ssh_addr.expect("the SSH listener").port();
    // (Lines split between two reads of the SSH relay reach the terminal whole: the test
    // below proves it; this one is about order.)
    let [t, s, w, i, j] = ["t0", "s1", "w2", "i3", "i4"];
    // The IRC clients log in to accounts made over telnet, as weechat users would.
    for name in [i, j] {
        drop(server.register(name, PASSWORD));
    }
    let mut ways: Vec<Box<dyn Way>> = vec![
        Box::new(Telnet {
            name: t.into(),
            client: server.register(t, PASSWORD).0,
        }),
        Box::new(Ssh::connect(ssh_port, s)),
        Box::new(Web::connect(&server, w)),
        Box::new(Irc {
            name: i.into(),
            client: irc::sasl_login(&server, i, PASSWORD),
        }),
        Box::new(Irc {
            name: j.into(),
            client: irc::sasl_login(&server, j, PASSWORD),
        }),
    ];
    // Each is in #lobby (its login's reply said so) before anyone speaks. Then all at once:
    // each says its lines and reads the other four's, every wait bounded.
    let others = PER * (ways.len() - 1);
    let start = Barrier::new(ways.len());
    let until = Instant::now() + Duration::from_secs(60);
    let seen: Vec<(String, bool, Vec<String>)> = std::thread::scope(|scope| {
        let readers: Vec<_> = ways
            .iter_mut()
            .map(|way| {
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    for n in 0..PER {
                        way.say(&format!("{}-{n}", way.name()));
                        // A breath between lines, so the five interleave in the database:
                        // a burst of 40 is read and committed as one run, and five runs in
                        // a row would prove little about order.
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    let mut got = Vec::new();
                    let due = if way.echoes() { PER + others } else { others };
                    while got.len() < due {
                        match way.next_chat(until) {
                            Ok((author, body)) => {
                                assert!(
                                    body.starts_with(&format!("{author}-")),
                                    "{} saw {body:?} from {author}",
                                    way.name()
                                );
                                got.push(body);
                            }
                            Err(e) => panic!(
                                "{} saw {} of {due} lines: {e}; they were {got:?}",
                                way.name(),
                                got.len()
                            ),
                        }
                    }
                    (way.name().to_string(), way.echoes(), got)
                })
            })
            .collect();
        readers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    // Every line reached four observers, and a line is committed before it is sent to anyone:
    // the table is complete.
    let stored = server.texts("SELECT body FROM messages ORDER BY id");
    assert_eq!(stored.len(), PER * ways.len(), "{stored:?}");
    // A terminal sees all of it, its own lines in their places; the others all but their own.
    for (name, echoes, got) in &seen {
        let mine = format!("{name}-");
        let want: Vec<&String> = stored
            .iter()
            .filter(|b| *echoes || !b.starts_with(&mine))
            .collect();
        assert_eq!(
            got.iter().collect::<Vec<_>>(),
            want,
            "{name}'s order is not messages.id's"
        );
    }
    // And each one's own lines were stored in the order it sent them.
    for way in &ways {
        let mine = format!("{}-", way.name());
        let stored_mine: Vec<&String> = stored.iter().filter(|b| b.starts_with(&mine)).collect();
        let sent: Vec<String> = (0..PER).map(|n| format!("{mine}{n}")).collect();
        assert_eq!(
            stored_mine,
            sent.iter().collect::<Vec<_>>(),
            "{}",
            way.name()
        );
    }
}

#[test]
fn an_ssh_user_sees_every_line_whole_when_many_come_faster_than_one_read() {
    // The SSH relay reads the session's output 4 KiB at a time, so lines that come faster
    // than that are split between reads; each must still reach the terminal whole (the
    // start of a split line was once taken for a prompt, erased, and lost).
    if !expect::have("whole lines over SSH", &["ssh"], "openssh-client") {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("host_key");
    let server = Server::start(&[
        "--ssh-addr",
        "127.0.0.1:0",
        "--ssh-host-key",
        key.to_str().unwrap(),
        "--max-rate",
        "100000",
    ]);
    let mut ssh = Ssh::connect(server.ssh_addr.expect("the SSH listener").port(), "reader");
    let mut telnet = Telnet {
        name: "a-talkative-telnet-user".into(),
        client: server.register("a-talkative-telnet-user", PASSWORD).0,
    };
    let pad = "x".repeat(100);
    let lines = 300;
    for n in 0..lines {
        telnet.say(&format!("a-talkative-telnet-user-{n}-{pad}"));
    }
    let until = Instant::now() + Duration::from_secs(60);
    for n in 0..lines {
        let (author, body) = ssh
            .next_chat(until)
            .unwrap_or_else(|e| panic!("line {n} of {lines}: {e}"));
        assert_eq!(author, "a-talkative-telnet-user");
        assert_eq!(body, format!("a-talkative-telnet-user-{n}-{pad}"));
    }
    assert!(ssh.odd.is_empty(), "torn lines: {:?}", ssh.odd);
}
