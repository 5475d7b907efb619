//! The web listener (`--web-addr`): one small HTTP/1.1 server on the thread-per-connection
//! model, for three things:
//!
//! - `GET /`: the chat page ([`page`]), one self-contained document (its script and style
//!   inline, allowed by their hashes in the `Content-Security-Policy`);
//! - `GET /ws`: a WebSocket carrying the line protocol, one text frame per line each way
//!   ([`ws`]), relayed to an ordinary session like TLS is;
//! - `GET /metrics`: Prometheus text ([`crate::server::metrics`]), behind `--metrics-token`
//!   if one is set.
//!
//! Anything else is a 404. One request per connection (`Connection: close`): the page is one
//! document, so a visit costs two connections (the page and its WebSocket). A request head
//! must arrive whole within `--login-timeout` and within 8 KiB; a request with a body is
//! refused; the worker is free again at once in every case.

mod page;
mod ws;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::{say_and_close, Accepted, Socket, Way};
use crate::server::metrics::{self, METRICS};
use crate::server::shared::Shared;
use crate::server::socket::ConnId;
use crate::server::socket::Via;

pub use page::Page;

/// Longest request head (request line and headers).
pub const MAX_HEAD: usize = 8 * 1024;

/// Its options.
#[derive(clap::Args, Debug)]
#[group(skip)]
pub struct Options {
    /// Also serve the web page, its WebSocket and /metrics here (HTTP), e.g. 127.0.0.1:8080;
    /// put a TLS reverse proxy in front of it for the public.
    #[arg(long)]
    pub web_addr: Option<String>,
    /// /metrics answers only requests with `Authorization: Bearer TOKEN`.
    #[arg(
        long,
        requires = "web_addr",
        env = "BESEDKA_METRICS_TOKEN",
        hide_env_values = true
    )]
    pub metrics_token: Option<String>,
    /// An origin besides the page's own whose pages may open the WebSocket, e.g.
    /// https://chat.example.org (repeatable).
    #[arg(long, requires = "web_addr")]
    pub web_origin: Vec<String>,
}

impl Options {
    pub fn bind(
        &self,
        _state: &std::path::Path,
        _all: &crate::server::transport::Options,
    ) -> Result<Option<crate::server::transport::Bound>, String> {
        let Some(addr) = &self.web_addr else {
            return Ok(None);
        };
        let token = self.metrics_token.clone().filter(|t| !t.is_empty());
        let web = Web::new(token, self.web_origin.clone(), Instant::now());
        super::listening(addr, Arc::new(web)).map(Some)
    }
}

/// How the web listener is set up.
pub struct Web {
    pub page: Page,
    /// `--metrics-token` and `--web-origin`, which a reload may change.
    access: std::sync::RwLock<Access>,
    /// When the server started, for `besedka_uptime_seconds`.
    pub started: Instant,
    via: Via,
}

impl Web {
    pub fn new(metrics_token: Option<String>, origins: Vec<String>, started: Instant) -> Web {
        Web {
            page: Page::new(),
            access: std::sync::RwLock::new(Access {
                metrics_token,
                origins,
            }),
            started,
            // A browser is no telnet client (the WebSocket relay drops telnet bytes anyway).
            via: Via::web("web"),
        }
    }
}

/// Who may read `/metrics` and which other origins' pages may open the WebSocket.
#[derive(Clone, Default)]
pub struct Access {
    /// `--metrics-token`: `/metrics` wants `Authorization: Bearer TOKEN`.
    pub metrics_token: Option<String>,
    /// `--web-origin`: origins besides the page's own whose pages may open the WebSocket.
    pub origins: Vec<String>,
}

impl Web {
    /// The access rules in force.
    pub fn access(&self) -> Access {
        // Written only by a whole-value store, so a poisoned lock still holds a whole value.
        self.access
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Way for Web {
    fn via(&self) -> Via {
        self.via
    }

    fn reload(&self, options: &super::Options) -> Result<(), String> {
        let new = Access {
            metrics_token: options.web.metrics_token.clone().filter(|t| !t.is_empty()),
            origins: options.web.web_origin.clone(),
        };
        *self.access.write().unwrap_or_else(|p| p.into_inner()) = new;
        Ok(())
    }

    fn refuse(&self, sock: &Socket, text: &str) {
        say_and_close(sock, http_refusal(text).as_bytes());
    }

    fn forwards(&self) -> bool {
        true
    }

    fn serve(&self, c: Accepted) {
        let _admitted = c.admitted; // released when the request or session ends
        serve(&c.shared, c.conn, c.sock, c.addr, self, c.settle);
    }
}

/// A refusal as an HTTP response (503: the reasons are all "not now").
fn http_refusal(text: &str) -> String {
    let body = text.trim_start_matches("! ");
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Headers a reverse proxy adds to say whom it brings: seen on a request that is not a
/// trusted proxy's, they tell of a proxy the operator has not named
/// ([`Shared::unnamed_proxy`]).
const FORWARDING: [&str; 3] = ["X-Forwarded-For", "Forwarded", "X-Real-IP"];

/// A request head, as far as this server reads one.
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why no request was read.
enum Bad {
    /// Over [`MAX_HEAD`]: 431.
    TooLarge,
    /// Not HTTP: 400.
    Malformed,
    /// Not whole by the deadline, or the client went: closed without a word.
    Gone,
}

/// Serves one connection on a worker. `settle`: the connection comes from a trusted proxy
/// (`addr` is what its PROXY header said, or the proxy itself) and is not admitted yet: the
/// request's forwarding headers may name the client, which is then admitted as the accept
/// thread admits others (or refused with a 503).
fn serve(
    shared: &Shared,
    conn: ConnId,
    sock: Arc<Socket>,
    addr: SocketAddr,
    web: &Web,
    settle: Option<SocketAddr>,
) {
    let deadline = shared
        .door
        .deadline(conn)
        .unwrap_or_else(|| Instant::now() + shared.config.get().login_timeout);
    let (req, rest) = match read_head(shared, &sock, deadline) {
        Ok(got) => got,
        Err(Bad::TooLarge) => {
            return respond(&sock, 431, "text/plain", &[], b"Request head too large.\n")
        }
        Err(Bad::Malformed) => return respond(&sock, 400, "text/plain", &[], b"Bad request.\n"),
        Err(Bad::Gone) => {
            log::debug!("{addr}: no whole request head in time");
            return;
        }
    };
    if settle.is_none() {
        if let Some(header) = FORWARDING.iter().find(|h| req.header(h).is_some()) {
            shared.unnamed_proxy(addr, &format!("the header {header}"));
        }
    }
    let addr = match settle {
        Some(peer) => match admit(shared, conn, &sock, peer, &req) {
            Some(client) => client,
            None => return,
        },
        None => addr,
    };
    let has_body = req
        .header("content-length")
        .is_some_and(|n| n.trim() != "0")
        || req.header("transfer-encoding").is_some()
        || !rest.is_empty();
    if has_body {
        return respond(
            &sock,
            413,
            "text/plain",
            &[],
            b"Request bodies are not accepted.\n",
        );
    }
    if req.method != "GET" {
        let allow = [("Allow", "GET")];
        return respond(&sock, 405, "text/plain", &allow, b"Only GET.\n");
    }
    let path = req.path.split('?').next().unwrap_or("");
    match path {
        "/" => web.page.serve(&sock),
        "/ws" => ws::serve(shared, conn, sock, addr, &req, web),
        "/metrics" => serve_metrics(shared, &sock, &req, web),
        _ => respond(&sock, 404, "text/plain", &[], b"Not found.\n"),
    }
}

/// The client of a trusted proxy's request: the forwarding headers' client if the connection
/// (`peer`: the proxy, or the client its PROXY header named) is a trusted proxy, else `peer`;
/// admitted, or refused with a 503 (`None`).
fn admit(
    shared: &Shared,
    conn: ConnId,
    sock: &Socket,
    peer: SocketAddr,
    req: &Request,
) -> Option<SocketAddr> {
    let trusted = |ip| shared.config.get().trusted(ip);
    let headers = req.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
    let client = match trusted(peer.ip()) {
        // The proxy does not say the client's port: 0 stands for it in the logs.
        true => crate::server::proxy::forwarded(headers, trusted)
            .map_or(peer, |ip| SocketAddr::new(ip, 0)),
        false => peer,
    };
    match crate::server::admit::admit_as(shared, conn, client) {
        Ok(()) => {
            log::info!("{client}: connected (web, through {peer})");
            Some(client)
        }
        Err(text) => {
            let body = format!("{}\n", text.trim_start_matches("! ").trim_end());
            respond(sock, 503, "text/plain", &[], body.as_bytes());
            None
        }
    }
}

/// Reads up to the end of the head (`\r\n\r\n`), by `deadline`, at most [`MAX_HEAD`] bytes;
/// returns the parsed head and any bytes after it.
fn read_head(shared: &Shared, sock: &Socket, deadline: Instant) -> Result<(Request, Vec<u8>), Bad> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let req = parse(&buf[..end + 4])?;
            return Ok((req, buf[end + 4..].to_vec()));
        }
        if buf.len() >= MAX_HEAD {
            return Err(Bad::TooLarge);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || shared.cut.load(Ordering::SeqCst) {
            return Err(Bad::Gone);
        }
        sock.set_read_timeout(Some(left)).map_err(|_| Bad::Gone)?;
        let want = chunk.len().min(MAX_HEAD + 4 - buf.len());
        match (&*sock).read(&mut chunk[..want]) {
            Ok(0) => return Err(Bad::Gone),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(Bad::Gone),
        }
    }
}

fn parse(head: &[u8]) -> Result<Request, Bad> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(Bad::Malformed),
    }
    Ok(Request {
        method: req.method.unwrap_or("").to_string(),
        path: req.path.unwrap_or("").to_string(),
        headers: req
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
    })
}

/// Writes a whole response and closes the connection.
fn respond(sock: &Socket, code: u16, kind: &str, headers: &[(&str, &str)], body: &[u8]) {
    let reason = match code {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let class = match code {
        100..=199 => 0,
        200..=399 => 1,
        400..=499 => 2,
        _ => 3,
    };
    metrics::inc(&METRICS.http[class]);
    let mut head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\nX-Content-Type-Options: nosniff\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = sock.set_write_timeout(Some(std::time::Duration::from_secs(10)));
    let mut out = sock;
    let _ = out.write_all(head.as_bytes());
    let _ = out.write_all(body);
    let _ = sock.shutdown(std::net::Shutdown::Write);
    // Let the client read it all before the close, so it sees a response, not a reset:
    // read what it still sends until it closes too, a read waits 500 ms. But for 1 s in all,
    // whatever it sends: otherwise a byte every 400 ms holds this worker forever.
    const EACH_READ: std::time::Duration = std::time::Duration::from_millis(500);
    const IN_ALL: std::time::Duration = std::time::Duration::from_secs(1);
    let deadline = Instant::now() + IN_ALL;
    let mut sink = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || sock.set_read_timeout(Some(left.min(EACH_READ))).is_err() {
            return;
        }
        match out.read(&mut sink) {
            Ok(n) if n > 0 => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            _ => return,
        }
    }
}

fn serve_metrics(shared: &Shared, sock: &Socket, req: &Request, web: &Web) {
    if let Some(token) = &web.access().metrics_token {
        let given = req
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !crate::auth::same_secret(given.trim(), token) {
            let headers = [("WWW-Authenticate", "Bearer")];
            return respond(
                sock,
                401,
                "text/plain",
                &headers,
                b"A bearer token is needed.\n",
            );
        }
    }
    let gauges = metrics::Gauges {
        users_online: shared.stats.users_online.load(Ordering::Relaxed),
        pending: shared.door.counts().1,
        bans: shared.moderation.counts(),
        uptime_seconds: web.started.elapsed().as_secs_f64(),
        database_bytes: shared.store.size(),
    };
    let body = metrics::render(&gauges);
    let headers = [("Cache-Control", "no-store")];
    respond(
        sock,
        200,
        "text/plain; version=0.0.4; charset=utf-8",
        &headers,
        body.as_bytes(),
    );
}
