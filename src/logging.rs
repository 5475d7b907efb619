//! Log setup: records go to standard error (human format), optionally to `--log-file`, and,
//! for `serve`, to the `logs` table through a non-blocking sink.
//!
//! The sink never makes a session or the hub wait on the database: a record is copied into a
//! bounded channel with `try_send`, and one writer thread inserts records in batches. When the
//! channel is full the record is dropped and counted; the writer logs the count later.
//! Records about the database itself (r2d2, rusqlite_migration, the sink's own errors) go to
//! standard error only, so the sink never feeds on itself.
//!
//! Standard error's lines can be diverted ([`divert_stderr`]): while the console has a
//! prompt on the terminal, its line editor prints them above the line being typed.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::SystemTime;

use log::LevelFilter;

use crate::store::logs::{self, Record};
use crate::store::Store;

/// Records waiting for the writer at most.
const QUEUE: usize = 8192;
/// Records inserted per transaction at most.
const BATCH: usize = 512;
/// The sink's own target: its records never go back into the sink.
const SINK_TARGET: &str = "besedka::logging";

/// Takes each line meant for standard error (its human format, with its line end).
pub type Divert = Box<dyn FnMut(String) + Send>;

/// Where standard error's lines go instead, while set.
static DIVERT: Mutex<Option<Divert>> = Mutex::new(None);

/// Sends the lines meant for standard error to `to` from now on; `None` gives them back to
/// standard error. The database sink and `--log-file` are not affected.
pub fn divert_stderr(to: Option<Divert>) {
    let old = match DIVERT.lock() {
        Ok(mut slot) => std::mem::replace(&mut *slot, to),
        Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), to),
    };
    // Dropped outside the lock: a diverter's drop may wait for its own thread.
    drop(old);
}

/// A formatted record for standard error: diverted, or written there.
fn to_stderr(record: &log::Record) {
    let line = format!("{}\n", record.args());
    if let Ok(mut slot) = DIVERT.lock() {
        if let Some(divert) = slot.as_mut() {
            divert(line);
            return;
        }
    }
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
}

/// Targets whose records stay out of the database.
fn stderr_only(target: &str) -> bool {
    ["r2d2", "rusqlite_migration", SINK_TARGET]
        .iter()
        .any(|t| target.starts_with(t))
}

enum Msg {
    Record(Record),
    /// Write everything queued so far, then answer.
    Flush(mpsc::Sender<()>),
    /// Write everything queued so far and end the writer.
    Stop,
}

/// Handle to the database sink, to flush it at shutdown.
pub struct DbSink {
    tx: SyncSender<Msg>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl DbSink {
    /// Writes everything queued so far, then returns (bounded by the writer's speed).
    pub fn flush(&self) {
        let (ack, done) = mpsc::channel();
        if self.tx.send(Msg::Flush(ack)).is_ok() {
            let _ = done.recv();
        }
    }

    /// Writes what is queued, ends the writer thread and joins it. Later records are
    /// discarded (standard error still has them).
    pub fn close(&self) {
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(writer) = writer {
            let _ = self.tx.send(Msg::Stop);
            let _ = writer.join();
        }
    }
}

/// `TIME LEVEL target: message`, for standard error and the log file; without `TIME` when
/// `stamp` is false (standard error is the journal, which stamps every line itself).
fn human(stamp: bool) -> impl Fn(fern::FormatCallback, &std::fmt::Arguments, &log::Record) {
    move |out, message, record| {
        let (level, target) = (record.level(), record.target());
        if stamp {
            let time = humantime::format_rfc3339_seconds(SystemTime::now());
            out.finish(format_args!("{time} {level:<5} {target}: {message}"))
        } else {
            out.finish(format_args!("{level:<5} {target}: {message}"))
        }
    }
}

/// Whether standard error is the systemd journal: `JOURNAL_STREAM` (`DEVICE:INODE`, set by
/// systemd for a service whose output goes there) names the very file standard error is, the
/// check systemd.exec(5) asks for: the variable alone is inherited by anything the service
/// starts, even with its standard error elsewhere.
fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var("JOURNAL_STREAM").ok() else {
        return false;
    };
    let Ok(stderr) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    let Ok(meta) = std::fs::File::from(stderr).metadata() else {
        return false;
    };
    stream == format!("{}:{}", meta.dev(), meta.ino())
}

/// Installs the global logger. `db` adds the database sink (for `serve`).
pub fn init(
    level: LevelFilter,
    log_file: Option<&Path>,
    db: Option<&Store>,
) -> Result<Option<Arc<DbSink>>, String> {
    // Every level passes fern; `log`'s maximum level (set below, and by a reload of
    // --log-level) is the one filter, so the level can change while the server runs.
    let mut dispatch = fern::Dispatch::new()
        .level(LevelFilter::Trace)
        // The pool's own chatter is only interesting when something is wrong.
        .level_for("r2d2", LevelFilter::Warn)
        // The line editor's debug records are about its key maps.
        .level_for("rustyline", LevelFilter::Warn)
        .chain(
            fern::Dispatch::new()
                .format(human(!stderr_is_journal()))
                .chain(fern::Output::call(to_stderr)),
        );
    if let Some(path) = log_file {
        // Appending, so clear-logs can truncate it under the open handle; made 0600, as the
        // database is: the records name users and their addresses.
        let file = crate::private_files::open_append(path)
            .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
        dispatch = dispatch.chain(fern::Dispatch::new().format(human(true)).chain(file));
    }
    let mut sink = None;
    if let Some(store) = db {
        // Its own connection, replaced when lost; what it says about that goes to standard
        // error only (its target), never back into the sink.
        let conn = crate::store::Dedicated::open(store, "the log writer", SINK_TARGET)
            .map_err(|e| format!("cannot open database for logs: {e}"))?;
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let writer = {
            let dropped = dropped.clone();
            std::thread::Builder::new()
                .name("log-writer".into())
                .spawn(move || write_loop(conn, rx, dropped))
                .map_err(|e| format!("cannot start log writer: {e}"))?
        };
        let send = tx.clone();
        dispatch = dispatch.chain(
            fern::Dispatch::new()
                .filter(|meta| !stderr_only(meta.target()))
                .chain(fern::Output::call(move |record| {
                    let r = Record {
                        created_at: humantime::format_rfc3339_seconds(SystemTime::now())
                            .to_string(),
                        level: record.level().to_string(),
                        target: record.target().to_string(),
                        message: record.args().to_string(),
                    };
                    if let Err(TrySendError::Full(_)) = send.try_send(Msg::Record(r)) {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                })),
        );
        sink = Some(Arc::new(DbSink {
            tx,
            writer: Mutex::new(Some(writer)),
        }));
    }
    dispatch
        .apply()
        .map_err(|_| "logging was already set up".to_string())?;
    log::set_max_level(level);
    Ok(sink)
}

fn write_loop(mut conn: crate::store::Dedicated, rx: Receiver<Msg>, dropped: Arc<AtomicU64>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut acks = Vec::new();
    let mut stop = false;
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Record(r) => batch.push(r),
                Msg::Flush(ack) => acks.push(ack),
                Msg::Stop => stop = true,
            }
            if stop {
                break;
            }
            if batch.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            batch.push(Record {
                created_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
                level: "WARN".into(),
                target: SINK_TARGET.into(),
                message: format!("{lost} log record(s) dropped: the log queue was full"),
            });
        }
        if !batch.is_empty() {
            match conn.run(|c| logs::insert(c, &batch)) {
                // The database is away (said once): these records are on standard error.
                Ok(()) | Err(crate::error::Error::DbDown) => {}
                Err(e) => log::error!(target: SINK_TARGET,
                    "cannot store {} log record(s): {e}", batch.len()),
            }
            batch.clear();
        }
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
        if stop {
            return;
        }
    }
}

impl Drop for DbSink {
    fn drop(&mut self) {
        self.close();
    }
}
