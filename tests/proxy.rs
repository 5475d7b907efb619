//! Behind a proxy (`--trusted-proxy`): haproxy (PROXY protocol v2) in front of the telnet and
//! TLS listeners, nginx in front of the telnet listener (stream, PROXY protocol v1) and of the
//! web listener (http, `X-Forwarded-For`), clients on different loopback addresses: the
//! per-address limits, bans, the logs and the console's `who` see each client's own address.
//! From anywhere else, PROXY and forwarding headers are not believed.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use common::proxies::{free_port, haproxy, nginx};
use common::tls::{all_ways, TlsClient};
use common::{connect_from, Client, Server, WAIT};

/// A telnet client through the proxy listening on `port`, from `from`.
fn via(from: &str, port: u16) -> Client {
    Client::over(connect_from(from, SocketAddr::from(([127, 0, 0, 1], port))).unwrap())
}

/// `GET path` with extra header lines through the proxy on `port` from `from`: the whole
/// response.
fn get(from: &str, port: u16, path: &str, headers: &str) -> String {
    let mut s = connect_from(from, SocketAddr::from(([127, 0, 0, 1], port))).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let head =
        format!("GET {path} HTTP/1.1\r\nHost: chat.example\r\nConnection: close\r\n{headers}\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn haproxy_brings_each_clients_own_address_to_limits_bans_logs_and_who() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let mut server = all_ways(
        dir.path(),
        &["--trusted-proxy", "127.0.0.1/32", "--max-per-ip", "2"],
    );
    let (telnet, tls, ssh, web) = (free_port(), free_port(), free_port(), free_port());
    let Some(_haproxy) = haproxy(&[
        (telnet, server.addr),
        (tls, server.tls_addr.unwrap()),
        (ssh, server.ssh_addr.unwrap()),
        (web, server.web_addr.unwrap()),
    ]) else {
        return;
    };
    // Two connections at once from one address, as --max-per-ip says; a third is refused.
    let mut one = via("127.4.0.1", telnet);
    one.expect("Name: ");
    let mut two = via("127.4.0.1", telnet);
    two.expect("Name: ");
    let said = via("127.4.0.1", telnet).expect_closed();
    assert!(
        said.contains("! Too many connections from your address (2 at once)."),
        "{said:?}"
    );
    // Another client of the same proxy is another address.
    let mut other = via("127.4.0.2", telnet);
    other.expect("Name: ");
    other.send("/register dora secret12");
    other.expect("* In #lobby");
    server.expect_log("127.4.0.2");
    server.command("who");
    server.expect_out("dora (1 session): 127.4.0.2:");
    // TLS through the proxy: the same.
    let tcp = connect_from("127.4.0.4", SocketAddr::from(([127, 0, 0, 1], tls))).unwrap();
    let mut secure = TlsClient::over(tcp, &cert);
    secure.expect("Name: ");
    secure.send("/register tess secret12");
    secure.expect("* In #lobby");
    server.command("who");
    server.expect_out("tess (1 session): 127.4.0.4:");
    // A ban on one client's address keeps that client out, not the proxy's others.
    server.ask("ban 127.4.0.3", "127.4.0.3");
    let said = via("127.4.0.3", telnet).expect_closed();
    assert!(said.contains("banned"), "{said:?}");
    let mut tls_banned =
        connect_from("127.4.0.3", SocketAddr::from(([127, 0, 0, 1], tls))).unwrap();
    assert!(
        common::closed_within(
            {
                tls_banned.write_all(b"\x16\x03\x01").unwrap();
                tls_banned
            },
            WAIT
        ) < WAIT
    );
    let mut fine = via("127.4.0.5", telnet);
    fine.expect("Name: ");
    // SSH through the proxy: the banned client is closed before a byte, another gets the
    // server's version line.
    let mut banned_ssh =
        connect_from("127.4.0.3", SocketAddr::from(([127, 0, 0, 1], ssh))).unwrap();
    banned_ssh.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = Vec::new();
    let _ = banned_ssh.read_to_end(&mut got);
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    let mut ssh_ok = connect_from("127.4.0.6", SocketAddr::from(([127, 0, 0, 1], ssh))).unwrap();
    ssh_ok.set_read_timeout(Some(WAIT)).unwrap();
    let mut version = [0u8; 8];
    ssh_ok.read_exact(&mut version).unwrap();
    assert_eq!(&version, b"SSH-2.0-");
    // The web listener behind a TCP balancer: a banned client is refused as soon as the
    // balancer's header names it, before it sends a byte of its request (no stalled head can
    // hold a place under the balancer's name).
    let mut silent = connect_from("127.4.0.3", SocketAddr::from(([127, 0, 0, 1], web))).unwrap();
    silent.set_read_timeout(Some(WAIT)).unwrap();
    let mut refused = String::new();
    let _ = silent.read_to_string(&mut refused);
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused:?}");
    assert!(refused.contains("banned"), "{refused:?}");
    let page = get("127.4.0.7", web, "/", "");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    drop((one, two));
}

#[test]
fn nginx_stream_and_http_bring_each_clients_own_address() {
    let mut server =
        Server::start_strict(&["--web-addr", "127.0.0.1:0", "--trusted-proxy", "127.0.0.1"]);
    let (telnet, http) = (free_port(), free_port());
    let web = server.web_addr.unwrap();
    let Some(_nginx) = nginx(&[(telnet, server.addr)], &[(http, web)]) else {
        return;
    };
    server.ask("ban 127.5.0.1", "127.5.0.1");
    // telnet through nginx's stream module (PROXY protocol v1).
    let said = via("127.5.0.1", telnet).expect_closed();
    assert!(said.contains("banned"), "{said:?}");
    let mut fine = via("127.5.0.2", telnet);
    fine.expect("Name: ");
    fine.send("/register nina secret12");
    fine.expect("* In #lobby");
    server.command("who");
    server.expect_out("nina (1 session): 127.5.0.2:");
    // The web page through nginx's http proxy (X-Forwarded-For).
    let banned = get("127.5.0.1", http, "/", "");
    assert!(banned.starts_with("HTTP/1.1 503"), "{banned}");
    assert!(banned.contains("banned"), "{banned}");
    // Headers a browser writes itself name no one: nginx passes `Forwarded` through and
    // appends to `X-Forwarded-For`, whose rightmost hop is the one it saw.
    let forged = "Forwarded: for=203.0.113.9\r\nX-Forwarded-For: 203.0.113.9\r\n";
    let banned = get("127.5.0.1", http, "/", forged);
    assert!(banned.starts_with("HTTP/1.1 503"), "{banned}");
    let page = get("127.5.0.2", http, "/", "");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    // Its WebSocket: logged in, and `who` shows the browser's address.
    let stream = connect_from("127.5.0.3", SocketAddr::from(([127, 0, 0, 1], http))).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let (mut ws, _) =
        tungstenite::client(format!("ws://127.0.0.1:{http}/ws"), stream).expect("WebSocket");
    ws.send(tungstenite::Message::text("/register wendy secret12"))
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        assert!(start.elapsed() < WAIT, "no login over the WebSocket");
        if let Ok(tungstenite::Message::Text(t)) = ws.read() {
            if t.contains("* In #lobby") {
                break;
            }
        }
    }
    server.command("who");
    server.expect_out("wendy (1 session): 127.5.0.3:");
}

#[test]
fn proxy_and_forwarding_headers_from_elsewhere_are_not_believed() {
    // Loopback is not a trusted proxy here.
    let mut server = Server::start_strict(&[
        "--web-addr",
        "127.0.0.1:0",
        "--trusted-proxy",
        "192.0.2.0/24",
    ]);
    let mut c = server.connect();
    c.expect("Name: ");
    c.send("PROXY TCP4 198.51.100.7 127.0.0.1 4711 7777");
    let said = c.expect_closed();
    assert!(
        said.contains("! A PROXY header is taken only from a trusted proxy"),
        "{said:?}"
    );
    // The same in PROXY protocol v2, as haproxy sends it.
    let mut c = server.connect();
    c.expect("Name: ");
    c.send_raw(b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\xc6\x33\x64\x07\x7f\0\0\x01\x12\x67\x1e\x61");
    let said = c.expect_closed();
    assert!(
        said.contains("! A PROXY header is taken only from a trusted proxy"),
        "{said:?}"
    );
    assert!(!said.contains("New user"), "{said:?}");
    // A ban on the address a client claims does not touch it: its own address counts.
    server.ask("ban 198.51.100.7", "198.51.100.7");
    let web = server.web_addr.unwrap();
    let mut s = TcpStream::connect(web).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(
        format!(
            "GET / HTTP/1.1\r\nHost: {web}\r\nX-Forwarded-For: 198.51.100.7\r\n\
             Forwarded: for=198.51.100.7\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
}
