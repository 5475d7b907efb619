//! TLS to PostgreSQL (`sslmode`, `sslrootcert`, `PGSSLMODE`, `PGSSLROOTCERT`): each test runs
//! the real binary against a throwaway cluster with `ssl = on` and a server certificate for
//! 127.0.0.1 and localhost signed by a CA the test makes (`tests/common/pg.rs`). Each fails
//! with the link in clear: the server either refuses plain connections (`hostssl` only) or the
//! test expects a refusal that only a checked certificate gives. Skipped, said on stderr,
//! without PostgreSQL outside CI; under CI that fails.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::pg::{Ca, Cluster};

/// A cluster with TLS on, its database `besedka`, that database's URL (no parameters), a temp
/// dir holding the CA's certificate, and the CA.
fn tls_cluster(hostssl_only: bool) -> Option<(Cluster, String, tempfile::TempDir, Ca)> {
    let (cluster, url) = common::pg::database_or_skip("besedka")?;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "test-ca");
    cluster.enable_tls(&ca, hostssl_only);
    Some((cluster, url, dir, ca))
}

/// `url` with `sslmode` and, if given, `sslrootcert`.
fn with_tls(url: &str, mode: &str, root: Option<&Path>) -> String {
    match root {
        Some(r) => format!("{url}?sslmode={mode}&sslrootcert={}", r.display()),
        None => format!("{url}?sslmode={mode}"),
    }
}

/// `besedka users --db URL` (the admin CLI opens the store), with `env` set.
fn users(url: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(common::bin());
    // No ~/.postgresql/root.crt of the machine's either: HOME is an empty directory.
    cmd.args(["users", "--db", url])
        .env_remove("PGSSLMODE")
        .env_remove("PGSSLROOTCERT")
        .env("HOME", empty_home());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// An empty directory to be HOME, kept for the test binary's life.
fn empty_home() -> &'static std::path::Path {
    static HOME: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    HOME.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn verify_full_with_the_right_ca_serves_a_chat_and_every_connection_is_encrypted() {
    let Some((cluster, url, _dir, ca)) = tls_cluster(true) else {
        return;
    };
    let db = with_tls(&url, "verify-full", Some(&ca.cert));
    let server = common::Server::start_on(Path::new(&db), &[]);
    let (mut alice, _) = server.register("alice", "secret1");
    let (mut bob, _) = server.register("bob", "secret1");
    alice.expect("* bob joined\r\n");
    alice.send("hello over TLS");
    bob.expect("alice: hello over TLS\r\n");

    let mut observer = cluster.observer("besedka");
    let stored: Vec<String> = observer
        .query("SELECT body FROM messages", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored, ["hello over TLS"]);

    // Every connection besedka holds, the pg-listen listener's (`LISTEN …`) among them.
    let sql = "SELECT s.ssl, coalesce(a.query, '') FROM pg_stat_activity a \
               JOIN pg_stat_ssl s USING (pid) \
               WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() \
               AND a.backend_type = 'client backend'";
    let start = Instant::now();
    let links: Vec<(bool, String)> = loop {
        let links: Vec<(bool, String)> = observer
            .query(sql, &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        if links.iter().any(|(_, q)| q.starts_with("LISTEN")) || start.elapsed() > common::WAIT {
            break links;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        links.iter().any(|(_, q)| q.starts_with("LISTEN")),
        "no listener among {links:?}"
    );
    // The pool's, the hub's, the log writer's and the listener's at least.
    assert!(links.len() >= 4, "{links:?}");
    assert!(
        links.iter().all(|(ssl, _)| *ssl),
        "a link in clear: {links:?}"
    );
    server.kill();
}

#[test]
fn a_certificate_from_another_ca_is_refused_naming_the_host_and_why() {
    let Some((_cluster, url, dir, _ca)) = tls_cluster(false) else {
        return;
    };
    let other = Ca::new(dir.path(), "another-ca");
    let url = url.replacen("postgres://besedka@", "postgres://besedka:s3cret-pw@", 1);
    let db = with_tls(&url, "verify-full", Some(&other.cert));
    let shown = db.replacen(":s3cret-pw", "", 1);
    let want = format!(
        "besedka: cannot open database {shown}: TLS to 127.0.0.1: certificate not signed by the \
         CA in sslrootcert\n"
    );

    let out = users(&db, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stderr(&out), want, "one line, the password left out");

    // `serve` the same, before it listens.
    let out = Command::new(common::bin())
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--no-console",
            "--db",
            &db,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
    assert!(!stderr(&out).contains("s3cret-pw"));

    // `require` with a CA checks the chain as verify-ca does (libpq's rule).
    let out = users(&with_tls(&url, "require", Some(&other.cert)), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("certificate not signed by the CA"));
    // Without one, `require` encrypts and takes the certificate as it comes.
    let out = users(&with_tls(&url, "require", None), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_wrong_host_name_is_refused_by_verify_full_and_passes_verify_ca() {
    let Some((cluster, _url, _dir, ca)) = tls_cluster(false) else {
        return;
    };
    // The certificate is for 127.0.0.1 and localhost; the name asked for is another, the
    // address the same (libpq's `hostaddr`).
    let url = format!(
        "postgres://besedka@wrong.example:{}/besedka?hostaddr=127.0.0.1",
        cluster.port
    );
    let root = ca.cert.display().to_string();
    let full = format!("{url}&sslmode=verify-full&sslrootcert={root}");
    let out = users(&full, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            ": TLS to wrong.example: certificate not valid for name \"wrong.example\"; it is for "
        ),
        "{}",
        stderr(&out)
    );
    // The names it is for, in words (rustls writes them as DnsName("…")).
    assert!(!stderr(&out).contains("DnsName"), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));

    // verify-ca checks the chain only; the CA from the environment this time.
    let out = users(
        &format!("{url}&sslmode=verify-ca"),
        &[("PGSSLROOTCERT", &root)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "No users.\n");
    // And verify-full from the environment, the URL saying nothing: refused.
    let out = users(
        &url,
        &[("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", &root)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("TLS to wrong.example: certificate not valid for name"));
}

#[test]
fn a_server_that_takes_only_tls_refuses_sslmode_disable() {
    let Some((_cluster, url, _dir, _ca)) = tls_cluster(true) else {
        return;
    };
    let out = users(&with_tls(&url, "disable", None), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no encryption"), "{}", stderr(&out));
    // The environment's sslmode, and the URL's winning over it.
    let out = users(&url, &[("PGSSLMODE", "disable")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = users(
        &with_tls(&url, "require", None),
        &[("PGSSLMODE", "disable")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The default (prefer) takes the TLS the server offers.
    let out = users(&url, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
