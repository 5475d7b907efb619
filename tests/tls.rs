//! TLS (`--tls-addr`): the real binary with a certificate from `besedka gen-cert`, and a
//! real TLS client (rustls) trusting that certificate, talking with a telnet-side client.

mod common;

use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::tls::{gen_cert, listener_flags, TlsClient};
use common::{bin, closed_within, Server};

/// A server with TLS on a free port, with its certificate.
fn tls_server(extra: &[&str]) -> (Server, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (tls, cert) = listener_flags(dir.path());
    let mut args: Vec<&str> = tls.iter().map(String::as_str).collect();
    args.extend(extra);
    let server = Server::start(&args);
    assert!(
        server.tls_addr.is_some(),
        "the startup line lists the TLS listener"
    );
    (server, cert, dir)
}

#[test]
fn a_tls_user_and_a_telnet_user_chat_both_ways() {
    common::backend::on_each_backend(|| {
        let (mut server, cert, _dir) = tls_server(&[]);
        let tls_addr = server.tls_addr.unwrap();
        let (mut telnet, _) = server.register("bob", "secret12");
        let mut alice = TlsClient::connect(tls_addr, &cert);
        alice.expect("Name: ");
        alice.send("/register alice secret12");
        alice.expect("* In #lobby (2): alice, bob");
        telnet.expect("* alice joined");
        alice.send("привет по TLS");
        telnet.expect("alice: привет по TLS\r\n");
        telnet.send("and back in clear");
        alice.expect("bob: and back in clear\r\n");
        let who = server.ask("who", "alice (1 session): 127.0.0.1:");
        let rest = server.expect_out("(tls, #lobby)");
        assert!(
            !rest.contains('\n'),
            "alice's session shows as tls: {who}{rest}"
        );
        server.expect_log("connected (tls)");
    });
}

#[test]
fn a_client_that_speaks_in_the_packet_that_ends_the_handshake_is_heard() {
    // An IRC client (weechat) sends its first line right behind its TLS Finished; the
    // server reads both at once and must not wait for more before passing the line on.
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = gen_cert(dir.path());
    let server = Server::start(&[
        "--ircs-addr",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let mut c = TlsClient::speaking_first(server.ircs_addr.unwrap(), &cert, "CAP LS 302");
    c.expect(":besedka CAP * LS :sasl=PLAIN");
    // The line way too: typed ahead of the greeting, answered after it.
    let (server, cert, _dir) = tls_server(&[]);
    let mut c = TlsClient::speaking_first(server.tls_addr.unwrap(), &cert, "/who");
    c.expect("Name: ");
    c.expect("Log in first to use /who");
}

#[test]
fn a_bad_certificate_or_key_is_a_one_line_error_and_exit_1() {
    common::backend::on_each_backend(|| {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _key) = gen_cert(dir.path());
        let missing = dir.path().join("nope.pem");
        for (c, k) in [(&cert, &missing), (&missing, &cert), (&cert, &cert)] {
            let out = std::process::Command::new(bin())
                .args([
                    "serve",
                    "--addr",
                    "127.0.0.1:0",
                    "--tls-addr",
                    "127.0.0.1:0",
                ])
                .arg("--db")
                .arg(dir.path().join("x.db"))
                .arg("--tls-cert")
                .arg(c)
                .arg("--tls-key")
                .arg(k)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(1), "{out:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err.trim_end().lines().last().unwrap_or_default();
            assert!(last.starts_with("besedka: "), "{err}");
            assert!(
                last.contains("TLS") || last.contains("certificate"),
                "{err}"
            );
        }
        // And gen-cert never overwrites a key.
        let again = std::process::Command::new(bin())
            .args(["gen-cert", "--host", "localhost", "--out"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(again.status.code(), Some(1));
    });
}

#[test]
fn a_silent_tls_connection_is_cut_at_the_login_timeout() {
    common::backend::on_each_backend(|| {
        let (server, _cert, _dir) = tls_server(&["--login-timeout", "1"]);
        let silent = TcpStream::connect(server.tls_addr.unwrap()).unwrap();
        let took = closed_within(silent, Duration::from_secs(5));
        assert!(took >= Duration::from_millis(800), "cut too soon: {took:?}");
        server.expect_log("TLS handshake failed");
    });
}

#[test]
fn the_per_address_limit_and_bans_apply_to_tls() {
    common::backend::on_each_backend(|| {
        let (mut server, cert, _dir) = {
            let dir = tempfile::tempdir().unwrap();
            let (tls, cert) = listener_flags(dir.path());
            let mut args = vec!["--max-per-ip", "1"];
            args.extend(tls.iter().map(String::as_str));
            let server = Server::start_strict(&args);
            (server, cert, dir)
        };
        let tls_addr = server.tls_addr.unwrap();
        let mut first = TlsClient::connect(tls_addr, &cert);
        first.expect("Name: ");
        // The address's one connection is taken: a second one, by any transport, is closed.
        let second = TcpStream::connect(tls_addr).unwrap();
        closed_within(second, Duration::from_secs(3));
        drop(first);
        server.expect_log("disconnected before login (tls");
        // A connection that is served waits for its handshake (up to the login timeout, 120 s);
        // a banned one is closed at once.
        server.ask("ban 127.0.0.1 testing", "Banned");
        let banned = TcpStream::connect(tls_addr).unwrap();
        closed_within(banned, Duration::from_secs(3));
    });
}

#[test]
fn a_tls_client_that_does_not_read_is_cut_at_the_backlog_bound() {
    common::backend::on_each_backend(|| {
        let (server, cert, _dir) = tls_server(&["--max-rate", "10000"]);
        let mut sleeper = TlsClient::connect(server.tls_addr.unwrap(), &cert);
        sleeper.expect("Name: ");
        sleeper.send("/register sleeper secret12");
        sleeper.expect("* In #lobby (1)");
        let (mut talker, _) = server.register("talker", "secret12");
        talker.echo_off(); // it does not read while it talks
        let line = "x".repeat(1000);
        // 8 MB: more than the kernel's buffers and the relay hold, far more than --max-backlog.
        for i in 0..8000 {
            talker.send(&format!("{i} {line}"));
        }
        server.expect_log("disconnecting sleeper");
        // The hub forgets a cut client when its session has ended (the relay sees the cut,
        // the session its end of the pair): the room hears it leave, then /who agrees.
        talker.expect("* sleeper left");
        talker.send("/who");
        talker.expect("* In #lobby (1): talker");
    });
}

#[test]
fn shutdown_says_goodbye_over_tls_and_exits_promptly() {
    common::backend::on_each_backend(|| {
        let (mut server, cert, _dir) = tls_server(&[]);
        let mut alice = TlsClient::connect(server.tls_addr.unwrap(), &cert);
        alice.expect("Name: ");
        alice.send("/register alice secret12");
        alice.expect("* In #lobby (1)");
        let mut bob = TlsClient::connect(server.tls_addr.unwrap(), &cert);
        bob.expect("Name: "); // still logging in
        let start = Instant::now();
        server.command("shutdown");
        alice.expect("* Server is shutting down. Bye.");
        assert_eq!(server.wait_exit(), Some(0));
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
    });
}

/// `openssl x509`'s subject and subjectAltName lines for `cert`; None (said on stderr)
/// without openssl.
fn subject_and_san(cert: &std::path::Path) -> Option<String> {
    let out = match std::process::Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-subject",
            "-ext",
            "subjectAltName",
            "-in",
        ])
        .arg(cert)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            common::skip("reading the certificate", &format!("openssl: {e}"));
            return None;
        }
    };
    assert!(out.status.success(), "{out:?}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// gen-cert with no --out, run in an empty working directory: the files go to tls/ in the
/// state directory (--state-dir, else the --db file's directory), and the working directory
/// stays empty. The certificate is named after --host: CN and SAN, a DNS name or an address.
#[test]
fn gen_cert_names_the_host_and_writes_into_the_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let cases = [
        // (how the state directory is given, it, --host, the SAN openssl shows)
        (
            "--db",
            dir.path().join("data"),
            "chat.example.org",
            "DNS:chat.example.org",
        ),
        (
            "--state-dir",
            dir.path().join("state"),
            "127.0.0.1",
            "IP Address:127.0.0.1",
        ),
        (
            "--state-dir",
            dir.path().join("v6"),
            "::1",
            "IP Address:0:0:0:0:0:0:0:1",
        ),
    ];
    for (how, state, host, san) in cases {
        let mut cmd = std::process::Command::new(bin());
        if how == "--db" {
            cmd.arg("--db").arg(state.join("besedka.db"));
        }
        cmd.args(["gen-cert", "--host", host]);
        if how == "--state-dir" {
            cmd.arg("--state-dir").arg(&state);
        }
        let out = cmd.current_dir(&cwd).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let cert = state.join("tls").join("cert.pem");
        assert!(
            cert.is_file() && state.join("tls/key.pem").is_file(),
            "{out:?}"
        );
        let told = String::from_utf8_lossy(&out.stdout);
        assert!(told.contains(&cert.display().to_string()), "{told}");
        let names: Vec<_> = std::fs::read_dir(&state).unwrap().collect();
        assert_eq!(names.len(), 1, "only tls/ (no database): {names:?}");
        let read = std::fs::read_dir(&cwd).unwrap().count();
        assert_eq!(read, 0, "nothing in the working directory");
        let Some(shown) = subject_and_san(&cert) else {
            continue;
        };
        assert!(shown.contains(&format!("subject=CN = {host}\n")), "{shown}");
        assert!(shown.lines().any(|l| l.trim() == san), "{shown}");
    }
    // A name no client could match is a usage error, and writes nothing.
    let out = std::process::Command::new(bin())
        .args(["gen-cert", "--host", "chat example"])
        .current_dir(&cwd)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a host name or an address"), "{err}");
    assert_eq!(std::fs::read_dir(&cwd).unwrap().count(), 0);
}
