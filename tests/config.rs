//! `--config FILE` and reloading it: the file applied, flags and the environment over it,
//! errors with the file's line, SIGHUP and the console's `reload` changing limits and the
//! TLS certificate under connected clients, a bad file keeping the running settings, and
//! contrib/besedka.toml kept whole and valid.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::tls::TlsClient;
use common::{bin, Client, Server};

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// `besedka ARGS`: exit code, stdout, stderr.
fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .envs(env.iter().copied())
        .env_remove("BESEDKA_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A 100-byte chat line: refused under `max-line = 64`, taken under the default.
fn long_line() -> String {
    "x".repeat(100)
}

#[test]
fn the_file_applies_and_flags_and_environment_win_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("besedka.toml");
    write(
        &conf,
        "# a class\nmax-line = 64\nno-register = true\nhistory = 3\n",
    );
    let conf_s = conf.to_str().unwrap();

    // From the file: registration is off and lines are short.
    let server = Server::start(&["--config", conf_s]);
    let mut c = server.connect();
    c.expect("Name: ");
    c.send("/register alice secret1");
    c.expect("Registration is closed");
    c.send(&long_line());
    c.expect("Line too long (over 64 bytes)");
    drop(server);

    // A flag wins over the file; the file's other keys still apply.
    let server = Server::start(&["--config", conf_s, "--max-line", "4096"]);
    let mut c = server.connect();
    c.expect("Name: ");
    c.send(&long_line());
    c.expect("! Invalid name: xxx"); // taken whole, and so read as a (too long) name
    c.send("/register alice secret1");
    c.expect("Registration is closed");
    drop(server);

    // The environment wins over the file: the file names one database, BESEDKA_DB another
    // (the harness's `--db` flag would win over both, so this one runs the binary itself).
    write(
        &conf,
        &format!(
            "addr = \"127.0.0.1:0\"\ndb = \"{}\"\n",
            dir.path().join("from-file.db").display()
        ),
    );
    let env_db = dir.path().join("from-env.db");
    let mut child = Command::new(bin())
        .args(["serve", "--config", conf_s])
        .env("BESEDKA_DB", &env_db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    drop(child.stdin.take()); // console closed; the server serves on
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        first.contains(&format!("(db: {})", env_db.display())),
        "{first:?}; stderr: {}",
        std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default()
    );
    assert!(!dir.path().join("from-file.db").exists());
}

#[test]
fn a_bad_key_or_value_is_one_line_with_the_file_and_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("bad.toml");
    let db = dir.path().join("x.db");
    let db = db.to_str().unwrap();
    let cases = [
        (
            "history = 5\n\nmax-clinets = 10\n",
            ":3: max-clinets: unknown key (did you mean 'max-clients'?)",
        ),
        (
            "max-clients = 0\n",
            ":1: max-clients: 0 is not in 1..=65536",
        ),
        ("sync = \"fast\"\n", ":1: sync: \"fast\" is not a sync mode"),
        (
            "no-register = \"yes\"\n",
            ":1: no-register: expects true or false",
        ),
        (
            "max-line = [64]\n",
            ":1: max-line: takes one value, not a list",
        ),
        ("history = \n", ":1: not valid TOML"),
    ];
    for (text, want) in cases {
        write(&conf, text);
        let conf_s = conf.to_str().unwrap();
        for args in [
            vec!["serve", "--db", db, "--config", conf_s],
            vec!["config", "check", conf_s],
        ] {
            let (code, _, err) = run(&args, &[]);
            assert_eq!(code, 2, "{args:?} on {text:?}: {err}");
            assert_eq!(err.lines().count(), 1, "one line: {err}");
            assert!(
                err.contains(&format!("{}{want}", conf.display())),
                "{args:?} on {text:?}: {err}"
            );
        }
    }
    assert!(
        !Path::new(db).exists(),
        "a refused config creates no database"
    );
    let (code, out, err) = run(&["config", "check", "contrib/besedka.toml"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("all valid"), "{out}");
    let (code, _, err) = run(&["config", "check", "/nonexistent/besedka.toml"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot read the config file"), "{err}");
}

/// Every option `serve --help` lists is in contrib/besedka.toml, each set key has the
/// default `--help` gives, and with every commented example enabled the file still checks.
#[test]
fn the_example_file_names_every_option_with_its_default() {
    let example = std::fs::read_to_string("contrib/besedka.toml").unwrap();
    let (_, help, _) = run(&["serve", "--help"], &[]);
    let mut options = Vec::new();
    for line in help.lines().map(str::trim_start) {
        let Some(rest) = line.strip_prefix("--") else {
            continue;
        };
        let name = rest.split([' ', ',']).next().unwrap();
        if name != "config" && name != "help" {
            options.push(name.to_string());
        }
    }
    assert!(options.len() > 40, "{options:?}");
    let key_line = |name: &str| {
        example.lines().find(|l| {
            let l = l.trim_start_matches("# ");
            l.starts_with(&format!("{name} = "))
        })
    };
    for name in &options {
        let line = key_line(name).unwrap_or_else(|| panic!("{name} missing from the example"));
        // A set key's value is the default --help states.
        if !line.starts_with('#') {
            let value = line.split_once(" = ").unwrap().1.trim_matches('"');
            let entry = help
                .split("\n      --")
                .find(|e| e.starts_with(&format!("{name} ")) || e.starts_with(&format!("{name}\n")))
                .unwrap();
            match entry.split("[default: ").nth(1) {
                Some(d) => assert_eq!(value, d.split(']').next().unwrap(), "{name}"),
                None => assert_eq!(
                    value, "false",
                    "{name} has no default: only a flag may be set"
                ),
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.toml");
    let enabled: String = example
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(kv) if kv.contains(" = ") && !kv.contains("max-pending = ") => kv,
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    write(&all, &enabled);
    let (code, out, err) = run(&["config", "check", all.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "every example enabled: {err}");
    assert!(out.contains("all valid"), "{out}");
}

/// Sends SIGHUP and waits for the reload's one log line (a new one, not an earlier
/// reload's); returns it.
fn reload_by_signal(server: &Server) -> String {
    let lines = || -> Vec<String> {
        server
            .stderr
            .lock()
            .unwrap()
            .lines()
            .filter(|l| l.contains("config reloaded from") || l.contains("config not reloaded"))
            .map(str::to_string)
            .collect()
    };
    let before = lines().len();
    server.signal(libc::SIGHUP);
    let start = std::time::Instant::now();
    loop {
        if let Some(line) = lines().get(before) {
            return line.clone();
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "no reload line; log:\n{}",
            server.stderr.lock().unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn sighup_changes_limits_under_a_connected_client_and_a_bad_file_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("besedka.toml");
    write(&conf, "history = 5\n");
    let mut server = Server::start(&["--config", conf.to_str().unwrap()]);
    server.ask("status", "config: ");
    let line = server.expect_out("\n");
    assert!(
        line.contains("besedka.toml (1 setting(s)), loaded "),
        "{line}"
    );

    let (mut alice, _) = server.register("alice", "secret1");
    let (mut dave, _) = server.register("dave", "secret1");
    alice.send(&long_line());
    dave.expect(&format!("alice: {}", long_line()));

    // Registration closed and lines shortened by a reload: alice stays and chats on.
    write(&conf, "history = 5\nno-register = true\nmax-line = 64\n");
    let said = reload_by_signal(&server);
    assert!(said.contains("changed max-line, no-register"), "{said}");
    let mut bob = server.connect();
    bob.expect("Name: ");
    bob.send("/register bob secret1");
    bob.expect("Registration is closed");
    bob.send(&long_line());
    bob.expect("Line too long (over 64 bytes)");
    alice.send("still here");
    dave.expect("alice: still here");

    // A file that does not parse changes nothing, and says why.
    write(&conf, "no-register = false\nmax-line = \n");
    server.command("reload");
    let said = server.expect_out("the running settings stay");
    assert!(said.contains("config not reloaded"), "{said}");
    assert!(said.contains("besedka.toml:2: not valid TOML"), "{said}");
    let mut carol = server.connect();
    carol.expect("Name: ");
    carol.send("/register carol secret1");
    carol.expect("Registration is closed");

    // The durability needs a restart: said in the one line, and the rest still applies.
    write(&conf, "sync = \"normal\"\nno-register = false\n");
    server.command("reload");
    let said = server.expect_out("the running value stays)\n");
    assert!(said.contains("changed "), "{said}");
    assert!(said.contains("sync need(s) a restart"), "{said}");
    let (_carol, _) = server.register("carol", "secret1");
    Client::connect(server.addr).expect("Name: "); // still listening where it was
}

/// A TLS handshake with the server, trusting only `trust`; the client's complaint if it
/// fails.
fn handshake(addr: std::net::SocketAddr, trust: &Path) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(trust).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[test]
fn sighup_rereads_the_tls_certificate_and_open_sessions_stay() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, live) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("live"),
    );
    for d in [&a, &b, &live] {
        std::fs::create_dir(d).unwrap();
    }
    let (cert_a, key_a) = common::tls::gen_cert(&a);
    let (cert_b, key_b) = common::tls::gen_cert(&b);
    let (cert, key): (PathBuf, PathBuf) = (live.join("cert.pem"), live.join("key.pem"));
    std::fs::copy(&cert_a, &cert).unwrap();
    std::fs::copy(&key_a, &key).unwrap();
    let conf = dir.path().join("besedka.toml");
    write(
        &conf,
        &format!(
            "tls-addr = \"127.0.0.1:0\"\nircs-addr = \"127.0.0.1:0\"\n\
             tls-cert = \"{}\"\ntls-key = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    );
    let server = Server::start(&["--config", conf.to_str().unwrap()]);
    let tls_addr = server.tls_addr.expect("TLS listener from the file");
    let ircs_addr = server.ircs_addr.expect("IRC-in-TLS listener from the file");
    let mut old = TlsClient::connect(tls_addr, &cert_a);
    old.expect("Name: ");
    old.send("/register alice secret1");
    old.expect("* In #lobby");

    // Renewed in place, as an ACME client does.
    std::fs::copy(&cert_b, &cert).unwrap();
    std::fs::copy(&key_b, &key).unwrap();
    let said = reload_by_signal(&server);
    assert!(said.contains("TLS certificate and key reread"), "{said}");

    // New handshakes present the new certificate: a client trusting only the old one
    // refuses it, one trusting the new one completes.
    let refused = handshake(tls_addr, &cert_a).expect_err("the old certificate is presented");
    assert!(refused.contains("invalid peer certificate"), "{refused}");
    handshake(tls_addr, &cert_b).expect("the new certificate");
    // IRC inside TLS shares the pair, and rereads it with the TLS way.
    let refused = handshake(ircs_addr, &cert_a).expect_err("the old certificate on ircs");
    assert!(refused.contains("invalid peer certificate"), "{refused}");
    handshake(ircs_addr, &cert_b).expect("the new certificate on ircs");
    let mut new = TlsClient::connect(tls_addr, &cert_b);
    new.expect("Name: ");
    new.send("/register bob secret1");
    new.expect("* In #lobby");
    // The session from before the reload carries on, over the old certificate's session.
    old.send("hello after the renewal");
    new.expect("alice: hello after the renewal");

    // A key that does not fit its certificate keeps the running pair.
    std::fs::copy(&key_a, &key).unwrap();
    let said = reload_by_signal(&server);
    assert!(said.contains("config not reloaded"), "{said}");
    assert!(said.contains("the running settings stay"), "{said}");
    handshake(tls_addr, &cert_b).expect("still the new certificate");
    let mut again = TlsClient::connect(tls_addr, &cert_b);
    again.expect("Name: ");
}

#[test]
fn sighup_lowers_max_clients_and_max_per_ip_without_cutting_anyone() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("besedka.toml");
    let limits = |clients: u32, per_ip: u32| {
        format!(
            "max-clients = {clients}\nmax-per-ip = {per_ip}\nlimit-loopback = true\n\
             connect-rate = 1000\nregister-rate = 100\n"
        )
    };
    write(&conf, &limits(3, 10));
    let server = Server::start_default(&["--config", conf.to_str().unwrap()]);
    let (mut alice, _) = server.register("alice", "secret1");
    let (mut bob, _) = server.register("bob", "secret1");

    write(&conf, &limits(2, 10));
    let said = reload_by_signal(&server);
    assert!(said.contains("changed max-clients"), "{said}");
    // Two are in: a third is told the server is full; nobody inside is cut.
    let said = server.connect().expect_closed();
    assert!(said.contains("Server is full (2 clients)"), "{said}");
    alice.send("still in");
    bob.expect("alice: still in");

    // alice and bob hold two connections from 127.0.0.1, the new per-address most.
    write(&conf, &limits(3, 2));
    let said = reload_by_signal(&server);
    assert!(said.contains("changed max-clients, max-per-ip"), "{said}");
    let said = server.connect().expect_closed();
    assert!(
        said.contains("Too many connections from your address (2 at once)"),
        "{said}"
    );
    bob.send("me too");
    alice.expect("bob: me too");

    // Raised again: carol gets in.
    write(&conf, &limits(3, 10));
    let said = reload_by_signal(&server);
    assert!(said.contains("changed max-per-ip"), "{said}");
    server.register("carol", "secret1");
}

/// One HTTP/1.0 GET of /metrics; the whole answer.
fn metrics(addr: std::net::SocketAddr, token: Option<&str>) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n{auth}\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The service's way (docs/service.md): the secret in the environment, the listener it
/// belongs to in the file. Its partner is not on the command line, and that is fine.
#[test]
fn an_option_from_the_environment_whose_partner_is_in_the_file_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("besedka.toml");
    write(&conf, "web-addr = \"127.0.0.1:0\"\n");
    let mut cmd = Command::new(bin());
    cmd.env("BESEDKA_METRICS_TOKEN", "s3cret-token");
    let server = Server::launch(
        cmd,
        &dir.path().join("besedka.db"),
        &["--config", conf.to_str().unwrap()],
    );
    let web = server.web_addr.expect("the web listener from the file");
    assert!(metrics(web, None).starts_with("HTTP/1.1 401"));
    assert!(metrics(web, Some("s3cret-token")).starts_with("HTTP/1.1 200"));
    // Without the file the same command line is a usage error, as before.
    let (code, _, err) = run(
        &[
            "serve",
            "--db",
            "x.db",
            "--metrics-token",
            "t",
            "--no-console",
        ],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--web-addr"), "{err}");
}
