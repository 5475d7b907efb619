//! A streaming standby of a throwaway cluster, for the failover test: made with
//! `pg_basebackup -R` (the standard way), made synchronous, the primary killed as a machine
//! dies (`SIGKILL`, every process at once), the standby promoted (`pg_ctl promote`).

use std::io::Write;
use std::time::{Duration, Instant};

use super::Cluster;

impl Cluster {
    /// A streaming standby of this cluster, started, with a directory and port of its own
    /// (removed when dropped, as any cluster's).
    pub fn standby(&self) -> Cluster {
        let c = Cluster::empty(self.bin.clone());
        let port = self.port.to_string();
        c.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "besedka",
                "-D",
                &c.data(),
                // The WAL it needs streamed alongside; the standby settings written (-R).
                "-X",
                "stream",
                "-R",
                "--no-sync",
                // A spread checkpoint first would take minutes.
                "--checkpoint=fast",
            ],
        );
        c.start_server();
        c
    }

    /// Adds `lines` to `postgresql.conf` and has the server reread it.
    pub fn configure(&self, lines: &str) {
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(std::path::Path::new(&self.data()).join("postgresql.conf"))
            .unwrap();
        writeln!(conf, "{lines}").unwrap();
        self.run("pg_ctl", &["-D", &self.data(), "reload"]);
    }

    /// Makes every standby synchronous (`synchronous_standby_names = '*'`, with
    /// `synchronous_commit = on`) and waits until one is, bounded.
    pub fn make_synchronous(&self, db: &str) {
        self.configure("synchronous_standby_names = '*'\nsynchronous_commit = on");
        let mut pg = self.observer(db);
        let start = Instant::now();
        loop {
            let n: i64 = pg
                .query_one(
                    "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'",
                    &[],
                )
                .unwrap()
                .get(0);
            if n == 1 {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the standby never became synchronous"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server and every process of it with SIGKILL at once, as when its machine
    /// dies: nothing is flushed, nothing is said to the clients.
    pub fn kill9(&self) {
        let pidfile = std::path::Path::new(&self.data()).join("postmaster.pid");
        let text = std::fs::read_to_string(&pidfile).expect("postmaster.pid");
        let postmaster: i32 = text.lines().next().unwrap().trim().parse().unwrap();
        // Its children, found before it goes (they are then the init process's).
        let children: Vec<i32> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                    // `pid (comm) state ppid …`: comm may hold spaces, so after its ')'.
                    stat.rsplit_once(')')
                        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                        .and_then(|p| p.parse::<i32>().ok())
                        == Some(postmaster)
                })
            })
            .collect();
        for pid in std::iter::once(postmaster).chain(children) {
            // SAFETY: kill(2) has no memory effects; these are the test's own cluster's.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    /// Promotes this standby to primary and waits until it takes writes.
    pub fn promote(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-w", "promote"]);
    }
}
