//! Real terminal clients (inetutils `telnet`, OpenSSH `ssh`) driven by `expect` on a pty.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A whole expect run, however it goes, ends by then (expect's own timeout is 10 s a step).
pub const HARD_LIMIT: Duration = Duration::from_secs(40);

/// The first `program` on PATH.
pub fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// True if every program is on PATH. If not, `test` is skipped ([`super::skip`]: said on
/// stderr; under CI, where `.ci/run` installs them, a failure).
pub fn have(test: &str, programs: &[&str], packages: &str) -> bool {
    let missing: Vec<_> = programs
        .iter()
        .filter(|p| on_path(p).is_none())
        .copied()
        .collect();
    if missing.is_empty() {
        return true;
    }
    super::skip(
        test,
        &format!("{} not on PATH (install {packages})", missing.join(" and ")),
    );
    false
}

/// A Tcl double-quoted string: non-ASCII as `\uXXXX`, so the script is plain ASCII and its
/// meaning does not depend on the encoding Tcl reads it in.
pub fn tcl(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' | '$' | '[' | ']' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// An expect step: waits for `text`, failing with a distinct exit code and a message.
pub fn wait_for(text: &str, code: u8) -> String {
    // Multi-line on purpose: expect reads a one-line braced argument as a single pattern.
    format!(
        "expect {{\n    -exact {t} {{}}\n    timeout {{ puts stderr {{timed out waiting for {t}}}; exit {code} }}\n    eof {{ puts stderr {{connection closed while waiting for {t}}}; exit {code} }}\n}}\n",
        t = tcl(text)
    )
}

/// An expect step: sends `text` as typed.
pub fn send(text: &str) -> String {
    format!("send -- {}\n", tcl(text))
}

/// What an expect run left.
pub struct Run {
    /// `None`: it ran over [`HARD_LIMIT`] and was killed.
    pub status: Option<std::process::ExitStatus>,
    /// Everything the spawned client showed (expect's `log_file`).
    pub transcript: String,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// For assertion messages.
    pub fn report(&self) -> String {
        format!(
            "status {:?}\nexpect stderr:\n{}\ntranscript:\n{}",
            self.status, self.stderr, self.transcript
        )
    }
}

/// Runs `steps` (after `set timeout 10` and the transcript's `log_file`) in `dir`.
pub fn run(dir: &Path, steps: &str) -> Run {
    let log = dir.join("transcript.log");
    let mut s = String::from("set timeout 10\n");
    s.push_str(&format!(
        "log_file -noappend {}\n",
        tcl(&log.display().to_string())
    ));
    s.push_str(steps);
    let script = dir.join("run.exp");
    std::fs::write(&script, s).unwrap();
    let (out, err) = (dir.join("expect.out"), dir.join("expect.err"));
    let started = Instant::now();
    let mut child = Command::new("expect")
        .arg("-f")
        .arg(&script)
        .env("LANG", "C.UTF-8")
        .env("LC_ALL", "C.UTF-8")
        .env("TERM", "dumb")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("spawn expect");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > HARD_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    Run {
        status,
        transcript: read(&log),
        stdout: read(&out),
        stderr: read(&err),
    }
}
