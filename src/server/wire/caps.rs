//! IRCv3 capabilities a client asked for (`CAP REQ`), and what they change in its bytes:
//! tags in front of its messages (`server-time`, `message-tags`' `msgid`, `account-tag`),
//! its own lines sent back (`echo-message`), history inside a `batch`, `AWAY` of the people
//! it shares a channel with (`away-notify`), the account in `JOIN` (`extended-join`), a
//! removed line's `REDACT` (`draft/message-redaction`).
//!
//! The hub makes a room's run of lines once per distinct [`Caps::for_runs`] among its IRC
//! clients: the caps that change a message's bytes. Those that do not (echo, away-notify,
//! …) never split a run.

/// A set of capabilities, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Caps(u16);

impl Caps {
    pub const NONE: Caps = Caps(0);
    pub const SASL: Caps = Caps(1);
    pub const SERVER_TIME: Caps = Caps(1 << 1);
    pub const MESSAGE_TAGS: Caps = Caps(1 << 2);
    pub const ACCOUNT_TAG: Caps = Caps(1 << 3);
    pub const ECHO_MESSAGE: Caps = Caps(1 << 4);
    pub const BATCH: Caps = Caps(1 << 5);
    pub const AWAY_NOTIFY: Caps = Caps(1 << 6);
    pub const EXTENDED_JOIN: Caps = Caps(1 << 7);
    pub const MULTI_PREFIX: Caps = Caps(1 << 8);
    pub const CHATHISTORY: Caps = Caps(1 << 9);
    pub const ACCOUNT_REGISTRATION: Caps = Caps(1 << 10);
    pub const MESSAGE_REDACTION: Caps = Caps(1 << 11);

    /// Every capability offered, with its name and its `CAP LS 302` value.
    pub const OFFERED: [(Caps, &'static str, &'static str); 12] = [
        (Caps::SASL, "sasl", "PLAIN"),
        (Caps::SERVER_TIME, "server-time", ""),
        (Caps::MESSAGE_TAGS, "message-tags", ""),
        (Caps::ACCOUNT_TAG, "account-tag", ""),
        (Caps::ECHO_MESSAGE, "echo-message", ""),
        (Caps::BATCH, "batch", ""),
        (Caps::AWAY_NOTIFY, "away-notify", ""),
        (Caps::EXTENDED_JOIN, "extended-join", ""),
        (Caps::MULTI_PREFIX, "multi-prefix", ""),
        (Caps::CHATHISTORY, "draft/chathistory", ""),
        (
            Caps::ACCOUNT_REGISTRATION,
            "draft/account-registration",
            "before-connect,custom-account-name",
        ),
        // A line an operator removed: `REDACT #room MSGID` (the server's only; a client's
        // own REDACT is not taken).
        (Caps::MESSAGE_REDACTION, "draft/message-redaction", ""),
    ];

    /// The capability called `name`, if offered.
    pub fn named(name: &str) -> Option<Caps> {
        Caps::OFFERED
            .iter()
            .find(|(_, n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(c, _, _)| c)
    }

    /// `CAP LS`'s list: with values (`302`) or names alone.
    pub fn listed(values: bool) -> String {
        let names: Vec<String> = Caps::OFFERED
            .iter()
            .map(|(_, name, value)| match (values, value.is_empty()) {
                (true, false) => format!("{name}={value}"),
                _ => name.to_string(),
            })
            .collect();
        names.join(" ")
    }

    /// `CAP LIST`'s: the names of these.
    pub fn names(self) -> String {
        let names: Vec<&str> = Caps::OFFERED
            .iter()
            .filter(|(c, _, _)| self.has(*c))
            .map(|&(_, n, _)| n)
            .collect();
        names.join(" ")
    }

    pub fn has(self, c: Caps) -> bool {
        self.0 & c.0 == c.0 && c.0 != 0
    }

    pub fn with(self, c: Caps) -> Caps {
        Caps(self.0 | c.0)
    }

    pub fn without(self, c: Caps) -> Caps {
        Caps(self.0 & !c.0)
    }

    /// The capabilities that change the bytes of a chat line (its tags): clients that
    /// agree on these share one run of lines.
    pub fn for_runs(self) -> Caps {
        Caps(self.0 & (Caps::SERVER_TIME.0 | Caps::MESSAGE_TAGS.0 | Caps::ACCOUNT_TAG.0))
    }

    /// The tags a committed message `(id, created_at, author's account)` carries for this
    /// client, with the `@` and the space after them; empty if it asked for none.
    /// `created_at` is stored to the second (`2026-12-01T06:05:57Z`); `server-time` wants
    /// milliseconds.
    pub fn tags(self, id: i64, created_at: &str, account: Option<&str>) -> String {
        let mut tags: Vec<String> = Vec::new();
        if self.has(Caps::SERVER_TIME) && !created_at.is_empty() {
            tags.push(format!("time={}", server_time(created_at)));
        }
        if self.has(Caps::MESSAGE_TAGS) && id > 0 {
            tags.push(format!("msgid={id}"));
        }
        if let Some(account) = account.filter(|_| self.has(Caps::ACCOUNT_TAG)) {
            tags.push(format!("account={account}"));
        }
        if tags.is_empty() {
            String::new()
        } else {
            format!("@{} ", tags.join(";"))
        }
    }
}

/// `2026-12-01T06:05:57Z` (as stored) as `server-time` writes it: `2026-12-01T06:05:57.000Z`.
pub fn server_time(created_at: &str) -> String {
    match created_at.strip_suffix('Z') {
        Some(secs) if !secs.contains('.') => format!("{secs}.000Z"),
        _ => created_at.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_lists_every_capability_and_302_gives_values() {
        let plain = Caps::listed(false);
        assert!(
            plain.starts_with("sasl server-time message-tags"),
            "{plain}"
        );
        assert!(!plain.contains('='));
        let v302 = Caps::listed(true);
        assert!(v302.contains("sasl=PLAIN"), "{v302}");
        assert!(v302.contains("draft/account-registration=before-connect"));
        assert_eq!(Caps::named("ECHO-MESSAGE"), Some(Caps::ECHO_MESSAGE));
        assert_eq!(Caps::named("cap-notify"), None);
    }

    #[test]
    fn tags_are_only_those_asked_for() {
        let at = "2026-12-01T06:05:57Z";
        assert_eq!(Caps::NONE.tags(7, at, Some("alice")), "");
        assert_eq!(
            Caps::SERVER_TIME.tags(7, at, Some("alice")),
            "@time=2026-12-01T06:05:57.000Z "
        );
        let all = Caps::SERVER_TIME
            .with(Caps::MESSAGE_TAGS)
            .with(Caps::ACCOUNT_TAG);
        assert_eq!(
            all.tags(7, at, Some("alice")),
            "@time=2026-12-01T06:05:57.000Z;msgid=7;account=alice "
        );
        assert_eq!(all.tags(0, "", None), "", "not committed: nothing to say");
    }

    #[test]
    fn only_tag_caps_split_runs() {
        let a = Caps::SERVER_TIME.with(Caps::ECHO_MESSAGE);
        let b = Caps::SERVER_TIME.with(Caps::AWAY_NOTIFY);
        assert_eq!(a.for_runs(), b.for_runs());
        assert_ne!(a.for_runs(), Caps::NONE.for_runs());
        assert_eq!(a.names(), "server-time echo-message");
    }
}
