//! The web listener over raw sockets: the page's headers, `/metrics` (its format, its
//! counters moving, the bearer token), 404, refused heads and bodies, a silent connection
//! cut, and the WebSocket (lines both ways, the `Origin` check, a reader that stops).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{closed_within, Server, WAIT};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

/// Sends `request` as is and reads the whole response (the server closes after one).
fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// `GET path` with extra header lines; the status code and the whole response.
fn get(addr: SocketAddr, path: &str, headers: &str) -> (u16, String) {
    let resp = raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}\r\n").as_bytes(),
    );
    let code = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {resp:?}"));
    (code, resp)
}

fn web_server(extra: &[&str]) -> Server {
    let server = Server::start(&[&["--web-addr", "127.0.0.1:0"], extra].concat());
    assert!(
        server.web_addr.is_some(),
        "no web address in the startup line"
    );
    server
}

/// Every line of the exposition is a comment or `name{labels} value`; returns the samples.
fn scrape(addr: SocketAddr) -> Vec<(String, f64)> {
    let (code, resp) = get(addr, "/metrics", "");
    assert_eq!(code, 200, "{resp}");
    assert!(
        resp.contains("Content-Type: text/plain; version=0.0.4"),
        "{resp}"
    );
    let body = &resp[resp.find("\r\n\r\n").unwrap() + 4..];
    let mut samples = Vec::new();
    for line in body.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line:?}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line:?}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "bad labels: {line:?}");
            for pair in series[name_end + 1..series.len() - 1].split(',') {
                let (k, v) = pair.split_once('=').expect("label=value");
                assert!(
                    !k.is_empty() && v.starts_with('"') && v.ends_with('"'),
                    "{line:?}"
                );
            }
        }
        samples.push((series.to_string(), value));
    }
    samples
}

fn sample(samples: &[(String, f64)], series: &str) -> f64 {
    samples
        .iter()
        .find(|(s, _)| s == series)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no {series} in {samples:?}"))
}

#[test]
fn the_page_is_one_document_with_its_security_headers_and_the_rest_is_refused() {
    common::backend::on_each_backend(|| {
        let server = web_server(&[]);
        let web = server.web_addr.unwrap();
        let (code, page) = get(web, "/", "");
        assert_eq!(code, 200, "{page}");
        for header in [
            "Content-Type: text/html; charset=utf-8",
            "Content-Security-Policy: default-src 'none'; script-src 'sha256-",
            "connect-src 'self'",
            "X-Content-Type-Options: nosniff",
            "Referrer-Policy: no-referrer",
            "X-Frame-Options: DENY",
        ] {
            assert!(page.contains(header), "{header} missing");
        }
        assert!(page.contains("<script>") && page.contains("new WebSocket("));
        assert_eq!(get(web, "/nope", "").0, 404);
        assert_eq!(get(web, "/index.html", "").0, 404);
        let post = raw(
            web,
            format!("POST / HTTP/1.1\r\nHost: {web}\r\nContent-Length: 3\r\n\r\nabc").as_bytes(),
        );
        assert!(post.starts_with("HTTP/1.1 413 "), "{post}");
        let head = raw(
            web,
            format!("HEAD / HTTP/1.1\r\nHost: {web}\r\n\r\n").as_bytes(),
        );
        assert!(head.starts_with("HTTP/1.1 405 "), "{head}");
        let junk = raw(web, b"hello there\r\n\r\n");
        assert!(junk.starts_with("HTTP/1.1 400 "), "{junk}");
        // A head over 8 KiB.
        let long = format!(
            "GET / HTTP/1.1\r\nHost: {web}\r\nX-Pad: {}\r\n\r\n",
            "a".repeat(9000)
        );
        let resp = raw(web, long.as_bytes());
        assert!(resp.starts_with("HTTP/1.1 431 "), "{resp}");
    });
}

#[test]
fn a_silent_connection_is_cut_at_the_login_timeout() {
    common::backend::on_each_backend(|| {
        let server = web_server(&["--login-timeout", "1"]);
        let web = server.web_addr.unwrap();
        let silent = TcpStream::connect(web).unwrap();
        let took = closed_within(silent, Duration::from_secs(5));
        assert!(took >= Duration::from_millis(900), "{took:?}");
        // Half a head, then nothing: cut too.
        let mut slow = TcpStream::connect(web).unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
        closed_within(slow, Duration::from_secs(5));
        // And the listener still serves.
        assert_eq!(get(web, "/", "").0, 200);
    });
}

#[test]
fn metrics_count_logins_messages_and_deliveries() {
    common::backend::on_each_backend(|| {
        let server = web_server(&[]);
        let web = server.web_addr.unwrap();
        let before = scrape(web);
        assert_eq!(sample(&before, "besedka_users_online"), 0.0);
        let (mut alice, _) = server.register("alice", "secret12");
        let (mut bob, _) = server.register("bob", "secret12");
        alice.expect("* bob joined");
        alice.send("counted");
        bob.expect("] alice: counted\r\n");
        let mut wrong = server.connect();
        wrong.expect("Name: ");
        wrong.send("/login alice wrong-password");
        wrong.expect("! Wrong password.");
        let after = scrape(web);
        let moved = |series: &str| sample(&after, series) - sample(&before, series);
        assert_eq!(moved("besedka_logins_total{method=\"registered\"}"), 2.0);
        assert_eq!(
            moved("besedka_login_failures_total{reason=\"password\"}"),
            1.0
        );
        assert_eq!(moved("besedka_messages_committed_total"), 1.0);
        assert_eq!(
            moved("besedka_deliveries_total"),
            2.0,
            "to bob, and back to alice (/echo)"
        );
        assert_eq!(
            moved("besedka_connections_total{transport=\"telnet\"}"),
            3.0
        );
        assert_eq!(sample(&after, "besedka_users_online"), 2.0);
        assert_eq!(
            sample(&after, "besedka_connections_open{transport=\"telnet\"}"),
            3.0
        );
        assert!(sample(&after, "besedka_commit_seconds_count") >= 1.0);
        assert!(sample(&after, "besedka_commit_batch_messages_bucket{le=\"+Inf\"}") >= 1.0);
        assert!(sample(&after, "besedka_database_bytes") > 0.0);
        assert!(sample(&after, "besedka_uptime_seconds") > 0.0);
        assert!(sample(&after, "besedka_connections_total{transport=\"web\"}") >= 2.0);
    });
}

#[test]
fn metrics_want_the_bearer_token_when_one_is_set() {
    common::backend::on_each_backend(|| {
        let server = web_server(&["--metrics-token", "s3cret-scrape"]);
        let web = server.web_addr.unwrap();
        let (code, resp) = get(web, "/metrics", "");
        assert_eq!(code, 401, "{resp}");
        assert!(resp.contains("WWW-Authenticate: Bearer"), "{resp}");
        assert_eq!(
            get(web, "/metrics", "Authorization: Bearer nope\r\n").0,
            401
        );
        let (code, resp) = get(web, "/metrics", "Authorization: Bearer s3cret-scrape\r\n");
        assert_eq!(code, 200, "{resp}");
        assert!(resp.contains("besedka_uptime_seconds "), "{resp}");
        // The page needs no token.
        assert_eq!(get(web, "/", "").0, 200);
    });
}

/// A WebSocket to the server's `/ws` with `origin` (if any).
fn ws_connect(
    web: SocketAddr,
    origin: Option<&str>,
) -> Result<WebSocket<TcpStream>, tungstenite::Error> {
    ws_connect_with(web, origin, None)
}

/// The same, with the client socket's receive buffer set (before connecting) if given.
fn ws_connect_with(
    web: SocketAddr,
    origin: Option<&str>,
    rcvbuf: Option<usize>,
) -> Result<WebSocket<TcpStream>, tungstenite::Error> {
    let mut req = format!("ws://{web}/ws").into_client_request().unwrap();
    if let Some(origin) = origin {
        req.headers_mut().insert("Origin", origin.parse().unwrap());
    }
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    if let Some(size) = rcvbuf {
        sock.set_recv_buffer_size(size).unwrap();
    }
    sock.connect(&web.into()).unwrap();
    let stream: TcpStream = sock.into();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    match tungstenite::client(req, stream) {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(e)) => Err(e),
        Err(e) => panic!("handshake: {e}"),
    }
}

/// Reads text frames until one contains `want`; returns them all.
fn ws_expect(ws: &mut WebSocket<TcpStream>, want: &str) -> Vec<String> {
    let start = Instant::now();
    let mut got = Vec::new();
    while start.elapsed() < WAIT {
        match ws.read() {
            Ok(Message::Text(t)) => {
                let done = t.contains(want);
                got.push(t.to_string());
                if done {
                    return got;
                }
            }
            Ok(_) => {}
            Err(e) => panic!("waiting for {want:?}: {e}; got {got:?}"),
        }
    }
    panic!("no {want:?} in {got:?}");
}

#[test]
fn a_websocket_carries_the_line_protocol_and_checks_the_origin() {
    common::backend::on_each_backend(|| {
        let mut server = web_server(&[]);
        let web = server.web_addr.unwrap();
        match ws_connect(web, Some("http://evil.example")) {
            Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
            other => panic!("a foreign origin got through: {:?}", other.map(|_| ())),
        }
        let mut ws = ws_connect(web, Some(&format!("http://{web}"))).unwrap();
        // One frame per line, a prompt as a frame of its own, no telnet bytes.
        let hello = ws_expect(&mut ws, "Name: ");
        assert!(
            hello.iter().any(|l| l.starts_with("* Welcome to besedka!")),
            "{hello:?}"
        );
        assert!(
            hello
                .iter()
                .all(|l| !l.contains('\u{fffd}') && !l.ends_with('\n')),
            "{hello:?}"
        );
        ws.send(Message::text("/register carol secret12")).unwrap();
        ws_expect(&mut ws, "* In #lobby (1): carol");
        let (mut bob, _) = server.register("bob", "secret12");
        ws_expect(&mut ws, "* bob joined");
        ws.send(Message::text("Привет from the browser")).unwrap();
        bob.expect("] carol: Привет from the browser\r\n");
        bob.send("hi there");
        let got = ws_expect(&mut ws, "] bob: hi there");
        // A chat line's frame starts with its id, which the page reads and does not show.
        let last = got.last().unwrap();
        let line = last.strip_prefix('\u{1}').and_then(|l| l.split_once(' '));
        assert!(
            line.is_some_and(|(id, line)| id.parse::<i64>().is_ok() && line.starts_with('[')),
            "{got:?}"
        );
        server.ask("who", "carol (1 session): 127.0.0.1:");
        server.expect_out("(web, #lobby)");
        // The page's own origin behind a TLS proxy (https) and no Origin (not a browser) pass.
        assert!(ws_connect(web, Some(&format!("https://{web}"))).is_ok());
        assert!(ws_connect(web, None).is_ok());
        ws.send(Message::text("/quit")).unwrap();
        ws_expect(&mut ws, "* Bye.");
    });
}

#[test]
fn another_origin_may_be_allowed_by_name() {
    common::backend::on_each_backend(|| {
        let server = web_server(&["--web-origin", "https://chat.example.org"]);
        let web = server.web_addr.unwrap();
        assert!(ws_connect(web, Some("https://chat.example.org")).is_ok());
        assert!(ws_connect(web, Some("https://other.example.org")).is_err());
    });
}

#[test]
fn a_websocket_client_that_does_not_read_is_cut_off() {
    common::backend::on_each_backend(|| {
        let server = web_server(&["--max-backlog", "65536", "--max-rate", "10000"]);
        let web = server.web_addr.unwrap();
        // A small receive buffer, so what the server sends backs up soon.
        let mut ws = ws_connect_with(web, None, Some(4096)).unwrap();
        ws.send(Message::text("/register sleepy secret12")).unwrap();
        ws_expect(&mut ws, "* In #lobby (1): sleepy");
        let (mut bob, _) = server.register("bob", "secret12");
        bob.echo_off(); // bob does not read while he talks
                        // sleepy reads nothing more; bob talks until the server gives up on sleepy.
        let line = "x".repeat(1900);
        let start = Instant::now();
        let mut cut = false;
        for _ in 0..8000 {
            bob.send(&line);
            if server
                .stderr
                .lock()
                .unwrap()
                .contains("disconnecting sleepy")
            {
                cut = true;
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "never cut");
        }
        assert!(cut, "sleepy was never cut off");
        server.expect_log("not reading, backlog over 65536 bytes");
        // The hub forgets a cut client when its session has ended: the room hears it leave,
        // then /who agrees.
        bob.expect("* sleepy left");
        bob.send("/who");
        bob.expect("* In #lobby (1): bob");
    });
}

/// After a response the server reads what the client still sends, so the client sees the
/// response rather than a reset, but for about a second in all: a client that drips a byte
/// every 400 ms (under the 500 ms each read waits) is closed all the same, and its worker
/// is free again.
#[test]
fn a_client_dripping_after_a_response_is_closed_within_the_drain_deadline() {
    let server = web_server(&[]);
    let web = server.web_addr.unwrap();
    let mut s = TcpStream::connect(web).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(format!("GET /nope HTTP/1.1\r\nHost: {web}\r\n\r\n").as_bytes())
        .unwrap();
    // The server shuts its side once the response is out: the read ends there.
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let answered = Instant::now();
    assert!(
        resp.starts_with(b"HTTP/1.1 404 "),
        "{}",
        String::from_utf8_lossy(&resp)
    );
    // Once the server has closed, the next byte is answered with a reset and the one after
    // that fails to send.
    while s.write_all(b"x").is_ok() {
        assert!(
            answered.elapsed() < Duration::from_secs(6),
            "still open after {:?} of drips",
            answered.elapsed()
        );
        std::thread::sleep(Duration::from_millis(400));
    }
    let took = answered.elapsed();
    // The deadline (1 s), then the two drips it takes to see the close.
    assert!(took < Duration::from_millis(2500), "closed after {took:?}");
}

#[test]
fn a_websocket_text_frame_that_is_not_utf8_is_closed_with_1007() {
    common::backend::on_each_backend(|| {
        let server = web_server(&[]);
        let web = server.web_addr.unwrap();
        let mut ws = ws_connect(web, None).unwrap();
        ws_expect(&mut ws, "Name: ");
        // A text frame (FIN, opcode 1), masked as a client's must be, of "café" in Latin-1.
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let payload: Vec<u8> = b"caf\xe9"
            .iter()
            .zip(mask.iter().cycle())
            .map(|(b, m)| b ^ m)
            .collect();
        let mut frame = vec![0x81, 0x80 | payload.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend_from_slice(&payload);
        ws.get_mut().write_all(&frame).unwrap();
        let start = Instant::now();
        let close = loop {
            match ws.read() {
                Ok(Message::Close(close)) => break close,
                Ok(other) => assert!(start.elapsed() < WAIT, "still open: {other:?}"),
                Err(e) => panic!("no close frame, the connection ended: {e}"),
            }
        };
        let close = close.expect("a close frame with a status");
        assert_eq!(u16::from(close.code), 1007);
        assert_eq!(close.reason.as_str(), "That line is not valid UTF-8.");
        // Then the server closes the TCP connection.
        closed_within(ws.into_inner(), WAIT);
    });
}
