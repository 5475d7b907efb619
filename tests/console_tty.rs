//! The console on a terminal: `besedka serve` run by `expect` on a pseudo-terminal, as an
//! operator runs it. The prompt, Tab completion of commands and online names, log lines
//! printed above the line being typed, history across a restart, Ctrl-C and Ctrl-D, and
//! unknown input echoed without its escape sequences.
//!
//! Needs `expect` on PATH; without it the tests are skipped (said on stderr), except under CI
//! (`CI=true`), where they fail: CI installs it (see `.ci/run`).
//!
//! Clients connect from the expect script with Tcl's own `socket` (real TCP), so that a log
//! line can be made to arrive at a chosen moment of the typing.

mod common;

use std::path::Path;

use common::expect::{self, send, tcl, wait_for};

const PROMPT: &str = "besedka> ";

/// The expect steps that start the server on `dir`'s database under a terminal the line
/// editor can drive, note its pid (so the test can make sure it is gone) and its port (Tcl
/// `$port`), and wait for the first prompt.
fn start(dir: &Path) -> String {
    let db = dir.join("besedka.db");
    let mut s = String::new();
    // expect::run gives expect TERM=dumb, on which the editor rightly gives up.
    s.push_str("set env(TERM) xterm\n");
    s.push_str(&format!(
        "spawn {} serve --addr 127.0.0.1:0 --allow-ip 127.0.0.0/8 --db {}\n",
        tcl(common::bin()),
        tcl(&db.display().to_string())
    ));
    s.push_str("puts \"PID [exp_pid]\"\n");
    s.push_str(
        "expect {\n    -re {listening on 127\\.0\\.0\\.1:([0-9]+) } { set port $expect_out(1,string) }\n    timeout { puts stderr {no listening line}; exit 3 }\n    eof { puts stderr {server ended at start}; exit 3 }\n}\n",
    );
    s.push_str(&wait_for(PROMPT, 4));
    s
}

/// Steps that type `shutdown` and wait for the server to end.
fn stop(code: u8) -> String {
    let mut s = send("shutdown\r");
    s.push_str(&format!(
        "expect {{\n    eof {{}}\n    timeout {{ puts stderr {{server did not stop}}; exit {code} }}\n}}\nexit 0\n"
    ));
    s
}

/// Steps that open a TCP connection as `var` (the server logs it at info), and, with a
/// `register` line, register a user on it.
fn connect(var: &str, register: Option<&str>) -> String {
    let mut s = format!(
        "set {var} [socket 127.0.0.1 $port]\nfconfigure ${var} -translation binary -buffering none\n"
    );
    if let Some(line) = register {
        s.push_str(&format!(
            "puts -nonewline ${var} {}\n",
            tcl(&format!("{line}\r\n"))
        ));
        // Logged in and in the room (so online) once the room's list comes, within 10 s.
        s.push_str(&format!(
            "fconfigure ${var} -blocking 0\nset got {{}}\nset until [expr {{[clock milliseconds] + 10000}}]\nwhile {{[string first {{In #lobby}} $got] < 0}} {{\n    if {{[clock milliseconds] > $until}} {{ puts stderr \"no room list: $got\"; exit 5 }}\n    append got [read ${var}]\n    after 20\n}}\n"
        ));
    }
    s
}

/// Runs the script; fails the test with everything it left if expect failed. Makes sure
/// the server is gone however the script ended.
fn run(dir: &Path, steps: &str) -> expect::Run {
    let run = expect::run(dir, steps);
    let pid = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("PID "))
        .and_then(|p| p.trim().parse::<i32>().ok());
    if let Some(pid) = pid.filter(|&p| p > 0) {
        // SAFETY: kill(2) with a pid this test's expect spawned; harmless if it is gone.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let status = run
        .status
        .unwrap_or_else(|| panic!("expect ran over {:?}; {}", expect::HARD_LIMIT, shown(&run)));
    assert!(
        status.success(),
        "expect failed ({status}); {}",
        shown(&run)
    );
    run
}

fn shown(run: &expect::Run) -> String {
    format!(
        "{}\nas the screen shows it:\n{}",
        run.report(),
        screen(&run.transcript).join("\n")
    )
}

/// What a terminal shows of `raw`, line by line, as far as the line editor drives it:
/// carriage return, erase to the end of the line, cursor forward; other escape sequences
/// are left out. Enough to tell a log line that took a line of its own from one written
/// into the middle of the typed text.
fn screen(raw: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let (mut line, mut col): (Vec<char>, usize) = (Vec::new(), 0);
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                lines.push(line.drain(..).collect());
                col = 0;
            }
            '\r' => col = 0,
            '\u{1b}' => {
                if chars.peek() != Some(&'[') {
                    chars.next();
                    continue;
                }
                chars.next();
                let mut params = String::new();
                for p in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&p) {
                        match p {
                            'K' => line.truncate(col),
                            'C' => col += params.parse::<usize>().unwrap_or(1),
                            _ => {}
                        }
                        break;
                    }
                    params.push(p);
                }
            }
            c if c.is_control() => {}
            c => {
                while line.len() < col {
                    line.push(' ');
                }
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.push(c);
                }
                col += 1;
            }
        }
    }
    lines.push(line.into_iter().collect());
    lines
}

/// The index of the first screen line at or after `from` for which `f` holds.
fn find(lines: &[String], from: usize, f: impl Fn(&str) -> bool) -> Option<usize> {
    (from..lines.len()).find(|&i| f(&lines[i]))
}

fn have_expect() -> bool {
    expect::have("console_tty", &["expect"], "expect")
}

#[test]
fn tab_completes_commands_and_online_names() {
    if !have_expect() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut s = start(dir.path());
    s.push_str(&send("sta\t"));
    s.push_str(&wait_for("status", 10));
    s.push_str(&send("\r"));
    s.push_str(&wait_for("uptime ", 11));
    s.push_str(&wait_for(PROMPT, 12));
    s.push_str(&connect("alice", Some("/register alice secret12")));
    s.push_str(&send("kick al\t"));
    s.push_str(&wait_for("alice", 14));
    s.push_str(&send("\r"));
    s.push_str(&wait_for("Kicked alice (1 session).", 15));
    s.push_str(&stop(16));
    let run = run(dir.path(), &s);
    let lines = screen(&run.transcript);
    // What was on the prompt line when Enter was pressed: the completed words.
    let status = find(&lines, 0, |l| l == "besedka> status")
        .unwrap_or_else(|| panic!("sta<Tab> did not become status; {}", shown(&run)));
    assert!(
        find(&lines, status, |l| l.starts_with("uptime ")).is_some(),
        "status did not run; {}",
        shown(&run)
    );
    let kick = find(&lines, status, |l| l == "besedka> kick alice")
        .unwrap_or_else(|| panic!("kick al<Tab> did not become kick alice; {}", shown(&run)));
    assert!(
        find(&lines, kick, |l| l == "Kicked alice (1 session).").is_some(),
        "{}",
        shown(&run)
    );
}

#[test]
fn a_log_line_prints_above_the_command_being_typed() {
    if !have_expect() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut s = start(dir.path());
    // Half a command, no Enter; then a client connects and the server logs it at info.
    s.push_str(&send("stat"));
    s.push_str(&wait_for("stat", 10));
    s.push_str(&connect("c", None));
    s.push_str(&wait_for("connected (telnet)", 11));
    // The prompt comes back under the log line with the half-typed command on it.
    s.push_str(&wait_for("besedka> stat", 12));
    s.push_str(&send("us\r"));
    s.push_str(&wait_for("uptime ", 13));
    s.push_str(&wait_for(PROMPT, 14));
    s.push_str(&stop(15));
    let run = run(dir.path(), &s);
    let lines = screen(&run.transcript);
    let log = find(&lines, 0, |l| l.contains("connected (telnet)"))
        .unwrap_or_else(|| panic!("no connection log line; {}", shown(&run)));
    // The log line has its line to itself, from its timestamp on: not `besedka> stat2026-…`.
    assert!(
        lines[log].starts_with("20") && lines[log].contains(" INFO "),
        "the log line was written into the prompt line: {:?}; {}",
        lines[log],
        shown(&run)
    );
    // Right under it, the prompt with what was typed, then the rest of it; Enter ran status.
    assert_eq!(lines[log + 1], "besedka> status", "{}", shown(&run));
    assert!(
        lines[log + 2].starts_with("listening on 127.0.0.1:"),
        "{}",
        shown(&run)
    );
}

#[test]
fn history_is_kept_in_a_private_file_across_a_restart() {
    if !have_expect() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut s = start(dir.path());
    s.push_str(&send("who\r"));
    s.push_str(&wait_for("Nobody is online.", 10));
    s.push_str(&wait_for(PROMPT, 11));
    s.push_str(&stop(12));
    run(dir.path(), &s);

    let history = dir.path().join("console_history");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&history)
            .expect("no console_history in the state directory")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "console_history is {mode:o}");
    let kept = std::fs::read_to_string(&history).unwrap();
    assert!(kept.lines().any(|l| l == "who"), "{kept:?}");

    // The next run: Up recalls the last command of the one before (shutdown), Up again the
    // one before it; Enter runs it.
    let mut s = start(dir.path());
    s.push_str(&send("\x1b[A"));
    s.push_str(&wait_for("shutdown", 20));
    s.push_str(&send("\x1b[A"));
    s.push_str(&wait_for("who", 21));
    s.push_str(&send("\r"));
    s.push_str(&wait_for("Nobody is online.", 22));
    s.push_str(&wait_for(PROMPT, 23));
    s.push_str(&stop(24));
    let run = run(dir.path(), &s);
    let lines = screen(&run.transcript);
    let who = find(&lines, 0, |l| l == "besedka> who")
        .unwrap_or_else(|| panic!("Up did not recall who; {}", shown(&run)));
    assert_eq!(lines[who + 1], "Nobody is online.", "{}", shown(&run));
}

#[test]
fn ctrl_c_clears_the_line_and_ctrl_d_closes_the_console() {
    if !have_expect() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut s = start(dir.path());
    s.push_str(&send("shutdo"));
    s.push_str(&wait_for("shutdo", 10));
    s.push_str(&send("\x03"));
    s.push_str(&wait_for("type 'shutdown' to stop the server", 11));
    // The server is still there, and the cleared text is not run with the next line.
    s.push_str(&wait_for(PROMPT, 12));
    s.push_str(&send("who\r"));
    s.push_str(&wait_for("Nobody is online.", 13));
    s.push_str(&wait_for(PROMPT, 14));
    // Ctrl-D on the empty line: the console closes, the server serves on.
    s.push_str(&send("\x04"));
    s.push_str(&wait_for("console input closed; serving on", 15));
    s.push_str(&connect("c", None));
    s.push_str(&wait_for("connected (telnet)", 16));
    // With the console closed, Ctrl-C is the terminal's interrupt again: it stops the server.
    s.push_str(&send("\x03"));
    s.push_str(&wait_for("shutting down", 17));
    s.push_str(
        "expect {\n    eof {}\n    timeout { puts stderr {server did not stop}; exit 18 }\n}\nexit 0\n",
    );
    let run = run(dir.path(), &s);
    let lines = screen(&run.transcript);
    let who = find(&lines, 0, |l| l == "besedka> who")
        .unwrap_or_else(|| panic!("Ctrl-C left the line as it was; {}", shown(&run)));
    assert_eq!(lines[who + 1], "Nobody is online.", "{}", shown(&run));
}

#[test]
fn unknown_input_is_echoed_without_its_escape_sequences() {
    if !have_expect() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut s = start(dir.path());
    // Ctrl-V puts the next key in the line as it is: here ESC, then `[31m`, a colour change.
    s.push_str(&send("\x16\x1b[31mfrob\r"));
    s.push_str(&wait_for("Unknown command", 10));
    s.push_str(&wait_for(PROMPT, 11));
    s.push_str(&stop(12));
    let run = run(dir.path(), &s);
    let lines = screen(&run.transcript);
    assert!(
        find(&lines, 0, |l| {
            l == "Unknown command 'frob' (control characters left out). Type 'help' for the list."
        })
        .is_some(),
        "{}",
        shown(&run)
    );
    // The editor shows the ESC it holds as `^[`; the colour change reached the terminal
    // from nowhere.
    assert!(
        !run.transcript.contains("\x1b[31m"),
        "the escape sequence was echoed: {}",
        shown(&run)
    );
}

#[test]
fn a_server_stopped_at_the_prompt_gives_the_terminal_back() {
    if !have_expect() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("besedka.db");
    // The server in the foreground of a shell that shows the terminal's settings after it.
    let mut s = String::from("set env(TERM) xterm\n");
    s.push_str(&format!(
        "spawn sh -c {{sh -c 'echo PID=$$; exec {} serve --addr 127.0.0.1:0 --db {}'; echo SETTINGS; stty -a}}\n",
        common::bin(),
        db.display()
    ));
    s.push_str(
        "expect {\n    -re {PID=([0-9]+)} { set pid $expect_out(1,string); puts \"PID $pid\" }\n    timeout { exit 3 }\n}\n",
    );
    s.push_str(&wait_for(PROMPT, 4));
    s.push_str(&send("abc"));
    s.push_str(&wait_for("abc", 10));
    // Stopped by a signal while the editor has the terminal in raw mode.
    s.push_str("exec kill -TERM $pid\n");
    s.push_str(&wait_for("server stopped", 11));
    s.push_str(&wait_for("SETTINGS", 12));
    s.push_str("expect {\n    eof {}\n    timeout { exit 13 }\n}\nexit 0\n");
    let run = run(dir.path(), &s);
    let settings = &run.transcript[run.transcript.rfind("SETTINGS").unwrap()..];
    let flags: Vec<&str> = settings.split_whitespace().collect();
    for flag in ["icanon", "echo", "isig"] {
        assert!(
            flags.contains(&flag),
            "the terminal was left without {flag}: {settings}"
        );
    }
}
