//! `GET /ws`: the line protocol over a WebSocket (`tungstenite`, sync), one text frame per
//! line each way.
//!
//! Served like TLS: the worker does the upgrade, makes a Unix socket pair, starts a *relay*
//! thread that holds the WebSocket, and runs the ordinary session on its end of the pair.
//! The relay turns each frame from the browser into a line (`TEXT\r\n`) for the session, and
//! the session's output back into frames: a frame per line, and a prompt (text with no line
//! end yet, such as `Name: `) as a frame of its own once nothing more follows. The telnet
//! bytes a session may send (the opening offer) are dropped: a browser is no telnet client.
//! While the WebSocket cannot take more, the relay stops reading the session's end, so a
//! browser that stops reading backs up into the pair and the hub cuts it at `--max-backlog`,
//! like every client.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use super::super::{end, relayed, wait_pair};
use super::{respond, Request, Socket, Web};
use crate::server::shared::Shared;
use crate::server::socket::ConnId;

/// Bytes from the browser held for the session at most before the relay stops reading it.
const HOLD: usize = 64 * 1024;

/// Largest frame or message taken from a browser: a few lines' worth (the session refuses a
/// line over `--max-line` itself).
const MAX_MESSAGE: usize = 16 * 1024;

/// The client's socket as a stream for `tungstenite`.
struct Stream(Arc<Socket>);

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whether a page from `origin` may open the WebSocket: no `Origin` (not a browser), the
/// page's own origin (any scheme: behind a TLS proxy the page is `https://`), or one listed
/// with `--web-origin`.
fn origin_allowed(req: &Request, web: &Web) -> bool {
    let Some(origin) = req.header("origin") else {
        return true;
    };
    let origin = origin.trim().trim_end_matches('/');
    if web
        .access()
        .origins
        .iter()
        .any(|o| o.trim_end_matches('/') == origin)
    {
        return true;
    }
    let host = origin.split_once("://").map(|(_, h)| h);
    match (host, req.header("host")) {
        (Some(host), Some(own)) => host.eq_ignore_ascii_case(own.trim()),
        _ => false,
    }
}

pub fn serve(
    shared: &Shared,
    conn: ConnId,
    tcp: Arc<Socket>,
    addr: SocketAddr,
    req: &Request,
    web: &Web,
) {
    let has = |name: &str, word: &str| {
        req.header(name).is_some_and(|v| {
            v.split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(word))
        })
    };
    let key = req.header("sec-websocket-key");
    let (Some(key), true, true, true) = (
        key,
        has("upgrade", "websocket"),
        has("connection", "upgrade"),
        has("sec-websocket-version", "13"),
    ) else {
        return respond(
            &tcp,
            400,
            "text/plain",
            &[],
            b"A WebSocket upgrade is expected here.\n",
        );
    };
    if !origin_allowed(req, web) {
        log::info!(
            "{addr}: WebSocket refused: origin {:?} is not this page's (see --web-origin)",
            req.header("origin").unwrap_or("")
        );
        return respond(
            &tcp,
            403,
            "text/plain",
            &[],
            b"This origin may not connect.\n",
        );
    }
    let accept = derive_accept_key(key.trim().as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    crate::server::metrics::inc(&crate::server::metrics::METRICS.http[0]);
    if (&*tcp).write_all(head.as_bytes()).is_err() {
        return;
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let socket = WebSocket::from_raw_socket(Stream(tcp.clone()), Role::Server, Some(config));
    relayed(shared, conn, addr, web.via, move |plain| {
        relay(socket, tcp, plain)
    });
}

/// Drops telnet commands from the session's output (`IAC x`, `IAC WILL|WONT|DO|DONT x`).
#[derive(Default)]
struct NoTelnet {
    /// Bytes of a command still to skip.
    skip: u8,
}

impl NoTelnet {
    fn filter(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        for &b in bytes {
            match self.skip {
                0 if b == 255 => self.skip = 1,
                0 => out.push(b),
                1 => self.skip = if (251..=254).contains(&b) { 1 + 1 } else { 0 },
                _ => self.skip = 0,
            }
        }
    }
}

/// Moves lines both ways until both sides are done. Never blocks on one side while the
/// other has work.
fn relay(mut ws: WebSocket<Stream>, tcp: Arc<Socket>, plain: UnixStream) {
    if tcp.set_nonblocking(true).is_err() || plain.set_nonblocking(true).is_err() {
        return end(&tcp, &plain);
    }
    let mut to_session: Vec<u8> = Vec::new();
    let mut partial: Vec<u8> = Vec::new();
    let mut telnet = NoTelnet::default();
    let mut buf = [0u8; 4096];
    let (mut client_done, mut session_done, mut told_session) = (false, false, false);
    loop {
        // Out to the browser: what is queued in the WebSocket.
        let out_pending = match ws.flush() {
            Ok(()) => false,
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => true,
            Err(_) => return end(&tcp, &plain),
        };
        // In to the session.
        while !to_session.is_empty() {
            match (&plain).write(&to_session) {
                Ok(n) => {
                    to_session.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return end(&tcp, &plain),
            }
        }
        if client_done && to_session.is_empty() && !told_session {
            let _ = plain.shutdown(Shutdown::Write);
            told_session = true;
        }
        if session_done && (!out_pending || client_done) {
            let _ = ws.close(None);
            let _ = ws.flush();
            return end(&tcp, &plain);
        }
        let want_client_in = !client_done && to_session.len() < HOLD;
        let want_session_in = !session_done && !out_pending;
        if !wait_pair(
            &tcp,
            &plain,
            [
                want_client_in,
                out_pending,
                want_session_in,
                !to_session.is_empty(),
            ],
        ) {
            return end(&tcp, &plain);
        }
        if want_client_in {
            loop {
                match ws.read() {
                    Ok(Message::Text(text)) => {
                        to_session.extend_from_slice(text.as_bytes());
                        to_session.extend_from_slice(b"\r\n");
                    }
                    Ok(Message::Close(_)) => {
                        client_done = true;
                        break;
                    }
                    // Pings are answered by tungstenite (queued, sent at the next flush).
                    Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                    Ok(Message::Binary(_)) => {
                        log::debug!("a browser sent a binary frame; closing");
                        return end(&tcp, &plain);
                    }
                    Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                        break
                    }
                    Err(
                        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                    ) => {
                        client_done = true;
                        break;
                    }
                    // RFC 6455 (8.1): a text frame that is not UTF-8 fails the connection,
                    // with status 1007. No browser sends one (a JavaScript string always
                    // encodes), so this is a hand-made client, and the close code tells it.
                    Err(tungstenite::Error::Utf8(_)) => {
                        log::debug!("a WebSocket text frame was not UTF-8; closing with 1007");
                        let _ = ws.close(Some(CloseFrame {
                            code: CloseCode::Invalid,
                            reason: crate::server::text::NOT_UTF8_CLOSE.into(),
                        }));
                        let _ = ws.flush();
                        return end(&tcp, &plain);
                    }
                    Err(e) => {
                        log::debug!("WebSocket error from a browser: {e}");
                        return end(&tcp, &plain);
                    }
                }
                if to_session.len() >= HOLD {
                    break;
                }
            }
        }
        if want_session_in {
            match (&plain).read(&mut buf) {
                Ok(0) => session_done = true,
                Ok(n) => {
                    telnet.filter(&buf[..n], &mut partial);
                    if frame_lines(&mut ws, &mut partial, &plain).is_err() {
                        return end(&tcp, &plain);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => session_done = true,
            }
        }
    }
}

/// Sends each whole line in `partial` as a frame; what is left (a prompt) goes as a frame
/// too if the session has nothing more to say right now.
fn frame_lines(
    ws: &mut WebSocket<Stream>,
    partial: &mut Vec<u8>,
    plain: &UnixStream,
) -> Result<(), tungstenite::Error> {
    let mut start = 0;
    while let Some(nl) = partial[start..].iter().position(|&b| b == b'\n') {
        let end = start + nl;
        let line = &partial[start..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        write(ws, line)?;
        start = end + 1;
    }
    partial.drain(..start);
    if !partial.is_empty() {
        let mut peek = [0u8; 1];
        let more = matches!(
            // SAFETY: a valid buffer of the length given, on an open socket.
            unsafe {
                libc::recv(
                    plain.as_raw_fd(),
                    peek.as_mut_ptr().cast(),
                    1,
                    libc::MSG_PEEK | libc::MSG_DONTWAIT,
                )
            },
            1..
        );
        if !more {
            write(ws, partial)?;
            partial.clear();
        }
    }
    Ok(())
}

fn write(ws: &mut WebSocket<Stream>, line: &[u8]) -> Result<(), tungstenite::Error> {
    let text = String::from_utf8_lossy(line).into_owned();
    match ws.write(Message::text(text)) {
        Ok(()) => Ok(()),
        // Queued; the flush at the top of the loop sends it.
        Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
    }
}
