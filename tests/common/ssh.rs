//! SSH with the real OpenSSH client: a server with an SSH listener, the `ssh` command line
//! the tests spawn under `expect`, and checking a run.

use std::path::Path;

use super::expect;
use super::Server;

/// A server with SSH on a free port and its host key in a temp dir.
pub fn ssh_server(strict: bool, extra: &[&str]) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("host_key");
    let args = [
        &[
            "--ssh-addr",
            "127.0.0.1:0",
            "--ssh-host-key",
            key.to_str().unwrap(),
        ][..],
        extra,
    ]
    .concat();
    let server = if strict {
        Server::start_strict(&args)
    } else {
        Server::start(&args)
    };
    assert!(
        server.ssh_addr.is_some(),
        "the startup line lists the SSH listener"
    );
    (server, dir)
}

/// `ssh` with a throwaway known-hosts file and no keys of the machine's user.
pub fn ssh_command(port: u16, user: &str, extra: &str) -> String {
    format!(
        "ssh -tt -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
         -o PubkeyAuthentication=no {extra} -p {port} {user}@127.0.0.1"
    )
}

pub fn have_clients(test: &str) -> bool {
    expect::have(test, &["ssh", "expect"], "openssh-client and expect")
}

/// Asserts the expect run passed; returns its report with the server's log, for the checks
/// that follow.
pub fn succeeded(run: &expect::Run, server: &Server) -> String {
    let report = format!(
        "{}\nserver log:\n{}",
        run.report(),
        server.stderr.lock().unwrap()
    );
    assert!(run.status.is_some_and(|s| s.success()), "{report}");
    report
}

/// Runs an expect script in a thread, so the test can play the other user meanwhile.
pub fn run_async(dir: &Path, steps: String) -> std::thread::JoinHandle<expect::Run> {
    let dir = dir.to_path_buf();
    std::thread::spawn(move || expect::run(&dir, &steps))
}
