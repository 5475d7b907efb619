//! The console on a terminal: a `besedka> ` prompt with line editing (rustyline), history in
//! a file, Tab completion ([`super::complete`]), and log lines printed above the prompt,
//! never inside the line being typed.
//!
//! Only when standard input and standard output are both terminals the editor can drive
//! (not `TERM=dumb`); otherwise [`open`] gives `None` and the console reads plain lines as
//! before. Log lines are diverted to the editor only when standard error is that terminal
//! too: redirected elsewhere they cannot land in the typed line.
//!
//! Keys: Ctrl-C at the prompt clears the line and never stops the server (the terminal's
//! interrupt key is turned off for the whole run, so it does not stop it while a command
//! runs either; a `kill -INT` still does); Ctrl-D on an empty line closes the console as the
//! end of piped input does, and gives the terminal its keys back.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Editor, ExternalPrinter};

use super::complete::Complete;
use crate::server::Server;

pub const PROMPT: &str = "besedka> ";
/// The history file, in the server's state directory.
pub const HISTORY_FILE: &str = "console_history";
/// Lines the history keeps, in memory and in its file.
const HISTORY_SIZE: usize = 1000;
/// Log lines waiting for the editor at most; past that they go straight to standard error
/// (a garbled prompt rather than a lost line, or a logging thread kept waiting).
const QUEUE: usize = 1024;
/// How long the end of the run waits for log lines still queued for the editor.
const DRAIN: Duration = Duration::from_secs(1);

/// The line editor, reading at the prompt.
pub struct Prompt {
    editor: Editor<Complete, DefaultHistory>,
    history: PathBuf,
    saved: Option<libc::termios>,
}

/// Held while the server runs: at its end (dropped), log lines go back to standard error
/// and the terminal gets back the settings it had before the prompt.
pub struct Terminal {
    saved: Option<libc::termios>,
    /// Answers once every log line queued for the editor is out.
    drained: Option<mpsc::Receiver<()>>,
}

/// The prompt and its terminal guard, or `None` when standard input or output is not a
/// terminal the editor can drive (a pipe, systemd, `TERM=dumb`).
pub fn open(server: Arc<Server>, state_dir: &Path) -> Option<(Prompt, Terminal)> {
    if !io::stdin().is_terminal() || !io::stdout().is_terminal() {
        return None;
    }
    let config = Config::builder()
        .max_history_size(HISTORY_SIZE)
        .ok()?
        .history_ignore_dups(true)
        .ok()?
        // As in bash: a line typed with a leading space stays out of the history.
        .history_ignore_space(true)
        .auto_add_history(true)
        // First Tab completes as far as the candidates agree, the second lists them.
        .completion_type(CompletionType::List)
        .build();
    let mut editor = Editor::<Complete, DefaultHistory>::with_config(config).ok()?;
    // Fails on a terminal the editor cannot drive: then the plain console.
    let printer = editor.create_external_printer().ok()?;
    editor.set_helper(Some(Complete { server }));
    let history = state_dir.join(HISTORY_FILE);
    // Made 0600 before the editor writes to it: the commands name people.
    match crate::private_files::create(&history) {
        Ok(true) => {}
        Ok(false) => {
            if let Err(e) = editor.load_history(&history) {
                log::warn!("cannot read console history {}: {e}", history.display());
            }
        }
        Err(e) => log::warn!("cannot create console history {}: {e}", history.display()),
    }
    let drained = if io::stderr().is_terminal() {
        Some(divert_logs(printer)?)
    } else {
        None
    };
    let saved = without_interrupt_key();
    let terminal = Terminal { saved, drained };
    Some((
        Prompt {
            editor,
            history,
            saved,
        },
        terminal,
    ))
}

/// Sends standard error's log lines to the editor, which prints them above the prompt. A
/// thread of its own hands them over: the editor takes one at a time, only while it reads,
/// and a logging thread (a session, the hub) must never wait for the operator's terminal.
fn divert_logs(mut printer: impl ExternalPrinter + Send + 'static) -> Option<mpsc::Receiver<()>> {
    let (tx, rx) = mpsc::sync_channel::<String>(QUEUE);
    let (done, drained) = mpsc::channel();
    std::thread::Builder::new()
        .name("console-log".into())
        .spawn(move || {
            for line in rx {
                if printer.print(line.clone()).is_err() {
                    let _ = io::stderr().write_all(line.as_bytes());
                }
            }
            let _ = done.send(());
        })
        .ok()?;
    crate::logging::divert_stderr(Some(Box::new(move |line| {
        if let Err(TrySendError::Full(line) | TrySendError::Disconnected(line)) = tx.try_send(line)
        {
            let _ = io::stderr().write_all(line.as_bytes());
        }
    })));
    Some(drained)
}

impl Prompt {
    /// Reads lines at the prompt and hands each to `run`, which returns once the command's
    /// answer is written (so the next prompt comes after it) or false when the server is
    /// stopping. Returns at Ctrl-D on an empty line, or when the terminal is gone.
    pub fn run(mut self, mut run: impl FnMut(String) -> bool) {
        let mut history_failed = false;
        loop {
            match self.editor.readline(PROMPT) {
                Ok(line) => {
                    // Each line as it comes, so a server stopped by a signal keeps them too.
                    if let Err(e) = self.editor.append_history(&self.history) {
                        if !history_failed {
                            log::warn!(
                                "cannot write console history {}: {e}",
                                self.history.display()
                            );
                            history_failed = true;
                        }
                    }
                    if !run(line) {
                        break;
                    }
                }
                Err(ReadlineError::Interrupted) => {
                    println!("(Ctrl-C only clears the line: type 'shutdown' to stop the server, Ctrl-D to close the console.)");
                }
                Err(ReadlineError::Eof) => break,
                Err(e) => {
                    log::warn!("console: cannot read the terminal: {e}");
                    break;
                }
            }
        }
        // The console is closed: Ctrl-C at the terminal stops the server again, as it does
        // when piped input has ended.
        if let Some(saved) = &self.saved {
            restore(saved);
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        crate::logging::divert_stderr(None);
        if let Some(drained) = self.drained.take() {
            let _ = drained.recv_timeout(DRAIN);
        }
        if let Some(saved) = &self.saved {
            // Still in the editor's raw mode (stopped by a signal at the prompt): end the
            // bracketed paste it turned on, and the prompt's line.
            if restore(saved) {
                let mut out = io::stdout();
                let _ = out.write_all(b"\x1b[?2004l\r\n");
                let _ = out.flush();
            }
        }
    }
}

/// Turns off the terminal's interrupt, quit and suspend keys (ISIG) and returns the settings
/// as they were. At the prompt the editor reads those keys itself; between prompts, while a
/// command runs, Ctrl-C would otherwise send SIGINT and stop the server.
fn without_interrupt_key() -> Option<libc::termios> {
    let mut saved = std::mem::MaybeUninit::<libc::termios>::uninit();
    // SAFETY: tcgetattr writes a whole termios into `saved` when it returns 0.
    if unsafe { libc::tcgetattr(libc::STDIN_FILENO, saved.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: initialized by the successful tcgetattr above.
    let saved = unsafe { saved.assume_init() };
    let mut quiet = saved;
    quiet.c_lflag &= !libc::ISIG;
    // SAFETY: `quiet` is a valid termios read from this terminal.
    unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSADRAIN, &quiet) };
    Some(saved)
}

/// Puts back `saved`; whether the terminal was in the editor's raw mode (no canonical
/// input) until then.
fn restore(saved: &libc::termios) -> bool {
    let mut now = std::mem::MaybeUninit::<libc::termios>::uninit();
    // SAFETY: as in without_interrupt_key.
    let raw = unsafe { libc::tcgetattr(libc::STDIN_FILENO, now.as_mut_ptr()) } == 0
        && unsafe { now.assume_init() }.c_lflag & libc::ICANON == 0;
    // SAFETY: `saved` is a valid termios read from this terminal.
    unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSADRAIN, saved) };
    raw
}
