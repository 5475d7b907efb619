//! Refusals in the log: whom the server turned away, why, and the flag that governs it, at
//! info level (a full server at warn: that one is the operator's to fix), at most one line
//! per reason every [`EVERY`] with a count of those held back since, so an operator sees why
//! people are refused and no client can flood the log:
//!
//! `refused 203.0.113.7:50312: too many new accounts from one address (--register-rate
//! 3/hour); 4 more refused like it in the last 12s`

use std::fmt::Display;
use std::time::Duration;

use super::config::Config;
use super::limits::Lock;
use super::quiet::Quiet;
use super::text::in_words;

/// At most one line per reason this often.
pub const EVERY: Duration = Duration::from_secs(10);

/// Why a client was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Its address is banned.
    Banned,
    /// `--max-per-ip` connections from its address are open.
    PerAddress,
    /// Over `--connect-rate`.
    TooFast,
    /// `--max-clients` users are in.
    Full,
    /// `--max-pending-per-ip` from its address are logging in.
    Pending,
    /// Over `--register-rate`.
    Register,
    /// The password lock (`--max-failed-logins`, `--max-failed-logins-per-ip`).
    Locked(Lock),
    /// `--max-sessions-per-user`.
    Sessions,
}

const WHYS: usize = 9;

impl Why {
    fn slot(self) -> usize {
        match self {
            Why::Banned => 0,
            Why::PerAddress => 1,
            Why::TooFast => 2,
            Why::Full => 3,
            Why::Pending => 4,
            Why::Register => 5,
            Why::Locked(Lock::Account) => 6,
            Why::Locked(Lock::Address) => 7,
            Why::Sessions => 8,
        }
    }

    /// What the log says: the reason and the setting behind it.
    pub fn reason(self, config: &Config) -> String {
        let r = &config.limits;
        let window = in_words(r.window);
        match self {
            Why::Banned => "a banned address (the console's bans lists them)".into(),
            Why::PerAddress => format!(
                "too many connections at once from one address (--max-per-ip {})",
                r.max_per_ip
            ),
            Why::TooFast => format!(
                "too many new connections from one address (--connect-rate {}/minute)",
                r.connect_rate
            ),
            Why::Full => format!("the server is full (--max-clients {})", config.max_clients),
            Why::Pending => format!(
                "too many connections logging in at once from one address \
                 (--max-pending-per-ip {})",
                config.max_pending_per_ip
            ),
            Why::Register => format!(
                "too many new accounts from one address (--register-rate {}/hour)",
                r.register_rate
            ),
            Why::Locked(Lock::Account) => format!(
                "too many failed logins for one account (--max-failed-logins {} in \
                 --failed-login-window {window})",
                r.max_failures_per_user
            ),
            Why::Locked(Lock::Address) => format!(
                "too many failed logins from one address (--max-failed-logins-per-ip {} in \
                 --failed-login-window {window})",
                r.max_failures_per_ip
            ),
            Why::Sessions => format!(
                "too many sessions for one user (--max-sessions-per-user {})",
                r.max_sessions_per_user
            ),
        }
    }
}

/// The log's throttle for refusals, one per reason.
pub struct Refusals {
    quiet: [Quiet; WHYS],
}

impl Default for Refusals {
    fn default() -> Refusals {
        Refusals::every(EVERY)
    }
}

impl Refusals {
    /// At most one line per reason every `every`.
    pub fn every(every: Duration) -> Refusals {
        Refusals {
            quiet: std::array::from_fn(|_| Quiet::every(every)),
        }
    }

    /// Logs that `who` was refused for `why`, unless a line for `why` went out within the
    /// period; returns the line if it did.
    pub fn log(&self, config: &Config, who: impl Display, why: Why) -> Option<String> {
        let (held, since) = self.quiet[why.slot()].allow_since()?;
        let mut line = format!("refused {who}: {}", why.reason(config));
        if let (true, Some(since)) = (held > 0, since) {
            let secs = since.as_secs() + u64::from(since.subsec_nanos() > 0);
            line.push_str(&format!(
                "; {held} more refused like it in the last {secs}s"
            ));
        }
        if why == Why::Full {
            log::warn!("{line}");
        } else {
            log::info!("{line}");
        }
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::config::Keepalive;
    use crate::server::limits::Rules;

    /// `serve`'s defaults, as far as the reasons read them.
    fn config() -> Config {
        let secs = Duration::from_secs;
        Config {
            max_clients: 1024,
            max_pending: 256,
            max_pending_per_ip: 8,
            trusted_proxies: vec![],
            history: 20,
            token_ttl_days: 30,
            max_line: 2048,
            telnet: true,
            max_backlog: 1 << 20,
            send_timeout: secs(60),
            worker_idle: secs(10),
            login_timeout: secs(120),
            limits: Rules {
                max_per_ip: 16,
                connect_rate: 30,
                max_failures_per_user: 5,
                max_failures_per_ip: 20,
                window: secs(600),
                register_rate: 3,
                max_sessions_per_user: 8,
                max_rate: 20,
                allow: vec![],
                limit_loopback: false,
            },
            no_register: false,
            keepalive: Keepalive {
                idle: secs(60),
                interval: secs(15),
                probes: 4,
            },
            idle_timeout: None,
            retention: Default::default(),
            public_host: None,
            public_port: None,
            faults: false,
        }
    }

    #[test]
    fn one_line_per_reason_per_period_then_a_count_of_the_rest() {
        let config = config();
        let r = Refusals::every(Duration::from_millis(100));
        let first = r.log(&config, "192.0.2.7:4711", Why::Register).unwrap();
        assert_eq!(
            first,
            "refused 192.0.2.7:4711: too many new accounts from one address \
             (--register-rate 3/hour)"
        );
        for _ in 0..4 {
            assert_eq!(r.log(&config, "192.0.2.7:4711", Why::Register), None);
        }
        // Another reason has its own line.
        let other = r.log(&config, "192.0.2.8:1", Why::TooFast).unwrap();
        assert!(other.ends_with("(--connect-rate 30/minute)"), "{other}");
        std::thread::sleep(Duration::from_millis(110));
        let next = r.log(&config, "192.0.2.9:1", Why::Register).unwrap();
        assert!(
            next.ends_with("(--register-rate 3/hour); 4 more refused like it in the last 1s"),
            "{next}"
        );
        let locked = Why::Locked(Lock::Address).reason(&config);
        assert!(
            locked.ends_with("(--max-failed-logins-per-ip 20 in --failed-login-window 10 minutes)"),
            "{locked}"
        );
    }
}
