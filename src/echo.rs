//! `besedka echo`: the lab's first task, kept as a teaching mode. An echo server with one
//! thread per client, each named, so the log shows which thread serves which client.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

/// Serves until the process is stopped. At most `max_clients` threads run at once; a client
/// beyond that is told so and closed.
pub fn run(listener: TcpListener, max_clients: usize) {
    let active = Arc::new(AtomicUsize::new(0));
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    for (n, stream) in listener.incoming().enumerate() {
        // Join the threads whose clients are gone, so handles don't pile up.
        let (done, running): (Vec<_>, Vec<_>) = threads.into_iter().partition(|t| t.is_finished());
        done.into_iter().for_each(|t| drop(t.join()));
        threads = running;

        let Ok(mut stream) = stream else { continue };
        let addr = stream
            .peer_addr()
            .map_or_else(|_| "?".to_string(), |a| a.to_string());
        if active.load(Ordering::SeqCst) >= max_clients {
            log::warn!("{addr}: refused, {max_clients} clients already");
            let _ = stream.write_all(b"! Server is full. Try again later.\r\n");
            continue;
        }
        active.fetch_add(1, Ordering::SeqCst);
        let name = format!("echo-{}", n + 1);
        let active = active.clone();
        let spawned = thread::Builder::new()
            .name(name.clone())
            .stack_size(64 * 1024)
            .spawn(move || {
                log::info!("{addr}: served by thread {name}");
                let bytes = echo(&mut stream);
                log::info!("{addr}: thread {name} done, echoed {bytes} bytes");
                active.fetch_sub(1, Ordering::SeqCst);
            });
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => log::error!("cannot start a thread: {e}"),
        }
    }
}

/// Sends back everything the client sends until it closes; returns the byte count.
fn echo(stream: &mut TcpStream) -> u64 {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    break;
                }
                total += n as u64;
            }
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    total
}
