//! `besedka serve`: its options, starting the server, and the control loop (console lines,
//! signals, a fatal error) on the main thread.

use std::io::{self, BufRead, Write};
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use besedka::console::{Console, Outcome};
use besedka::server;

use super::reload::Origin;
use super::ServeArgs;
use besedka::store::{self, Store};

/// What wakes the control thread (this one, the main thread).
enum Control {
    Line(String),
    /// Standard input ended: the server carries on without a console.
    Eof,
    Signal(i32),
    /// SIGHUP: reread the config file.
    Reload,
    /// The server cannot go on (its hub panicked).
    Fatal(String),
}

pub fn serve(
    db: &Path,
    level: log::LevelFilter,
    args: ServeArgs,
    mut origin: Origin,
) -> Result<(), String> {
    // Each client holds a socket; the default soft limit (often 1024) would cap the server
    // below --max-clients.
    let nofile = rlimit::increase_nofile_limit(u64::MAX);
    besedka::memory::return_large_blocks();
    if !args.allow_shared_db {
        besedka::private_files::refuse_shared_db(db)?;
    }
    let store = Store::open_with(db, args.sync)
        .map_err(|e| format!("cannot open database {}: {e}", store::shown(db)))?;
    let state = super::state_dir(db, args.state_dir.as_deref());
    let listeners = args.ways.bind(&state)?;
    let sink = besedka::logging::init(level, args.log_file.as_deref(), Some(&store))?;
    if let Err(e) = nofile {
        log::warn!("cannot raise the open-files limit: {e}");
    }
    let config = args.config();
    // Before the server takes its first connection: the handler needs a pipe, and a flood of
    // connections at start could otherwise take the last descriptors first and stop the
    // server (seen when the open-files limit was low).
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(|e| format!("cannot handle signals: {e}"))?;
    let (tx, rx) = mpsc::channel();
    let on_fatal = {
        let tx = tx.clone();
        move |why| {
            let _ = tx.send(Control::Fatal(why));
        }
    };
    let server =
        Arc::new(server::start(listeners, store, config, on_fatal).map_err(|e| e.to_string())?);
    let on = server
        .listening()
        .iter()
        .map(|(name, addr)| format!("{addr} ({name})"))
        .collect::<Vec<_>>()
        .join(", ");
    // A PostgreSQL URL's password is a secret: shown nowhere.
    let shown = store::shown(db);
    println!("besedka listening on {on} (db: {shown})");
    let _ = io::stdout().flush();
    log::info!("listening on {on}, database {shown}");
    server.loopback_notice();
    super::service::ready(&on);

    let signal_handle = signals.handle();
    let signal_thread = {
        let tx = tx.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if sig == SIGHUP {
                        let _ = tx.send(Control::Reload);
                        continue;
                    }
                    let _ = tx.send(Control::Signal(sig));
                    return;
                }
            })
            .map_err(|e| e.to_string())?
    };
    // On a terminal, a prompt: its thread waits for each command's answer (`done`) before
    // it shows the next prompt. Dropped at the end, `_terminal` gives the terminal back.
    let (done, answered) = mpsc::channel::<()>();
    let prompt = (!args.no_console)
        .then(|| besedka::console::prompt::open(server.clone(), &state))
        .flatten();
    let _terminal = match prompt {
        Some((prompt, terminal)) => {
            let tx = tx.clone();
            std::thread::Builder::new()
                .name("console".into())
                .spawn(move || {
                    prompt.run(|line| {
                        tx.send(Control::Line(line)).is_ok() && answered.recv().is_ok()
                    });
                    let _ = tx.send(Control::Eof);
                })
                .map_err(|e| e.to_string())?;
            Some(terminal)
        }
        None => None,
    };
    if !args.no_console && _terminal.is_none() {
        // A blocked read of standard input cannot be interrupted, so it happens on its own
        // thread, which is not joined: it ends with the process. Commands run here.
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                for line in io::stdin().lock().lines() {
                    let Ok(line) = line else { break };
                    if tx.send(Control::Line(line)).is_err() {
                        return;
                    }
                }
                let _ = tx.send(Control::Eof);
            })
            .map_err(|e| e.to_string())?;
    }

    let out = &mut io::stdout();
    let mut failure = None;
    while let Ok(control) = rx.recv() {
        match control {
            Control::Line(line) => {
                let console = Console {
                    server: &server,
                    log_file: args.log_file.as_deref(),
                    sink: sink.as_deref(),
                    config: origin.describe(),
                };
                match console.execute(&line, out) {
                    Ok(Outcome::Shutdown) => break,
                    Ok(Outcome::Continue) => {}
                    Ok(Outcome::Reload) => {
                        let said = origin.reload(&server);
                        let _ = writeln!(out, "{said}");
                        let _ = out.flush();
                    }
                    Err(e) => log::warn!("console output failed: {e}"),
                }
                let _ = done.send(());
            }
            Control::Reload => {
                super::service::reloading();
                origin.reload(&server);
                super::service::ready(&on);
            }
            Control::Eof => log::info!("console input closed; serving on (stop with SIGTERM)"),
            Control::Signal(sig) => {
                log::info!("signal {sig} received: shutting down");
                break;
            }
            Control::Fatal(why) => {
                failure = Some(why);
                break;
            }
        }
    }
    super::service::stopping();
    server.shutdown();
    signal_handle.close();
    let _ = signal_thread.join();
    if let Some(sink) = sink {
        sink.close();
    }
    failure.map_or(Ok(()), Err)
}
