//! Everything a chat client is told, in one place, so the same event reads the same from
//! every path (the accept thread, the session, a command, the hub, the shutdown) and the
//! wording can be reviewed (or translated) in one file. `protocol.rs` says how a line is
//! framed (`* ` notices, `! ` errors, chat lines); this file says what it says.
//!
//! One group stays out on purpose: a moderation action's answer to the moderator (`Banned
//! bob (1 session disconnected).`) and its announcement are made in `moderation.rs`, which
//! the console and operators in chat share; what falls on the user (banned, muted, kicked)
//! is here.
//!
//! [`chat`] has what concerns rooms, away, offline messages, mentions and search.

mod chat;
mod cleanup;

pub use chat::*;
pub use cleanup::*;

use std::time::Duration;

use super::protocol::{error, notice};

/// The first lines a client gets.
pub fn welcome(online: usize) -> String {
    notice(&format!(
        "Welcome to besedka! {online} {} online.",
        if online == 1 { "user" } else { "users" }
    ))
}

/// How to log in, after the welcome (not for a login the transport did: SSH).
pub fn how_to_log_in() -> String {
    notice("Type your name to log in or register, or /token TOKEN to resume a session.")
}

/// To an IRC client not logged in at the end of registration.
pub fn irc_how_to_log_in(may_register: bool) -> String {
    let mut out = notice(
        // Clients send /msg only once registered (001): /quote passes the line as it is.
        "You are not logged in. Your nick is your account's name: /quote PRIVMSG NickServ \
         :IDENTIFY PASSWORD, or set your client's SASL (PLAIN) or server password \
         (NAME:PASSWORD) and reconnect.",
    );
    out.push_str(&notice(if may_register {
        "New here? /quote PRIVMSG NickServ :REGISTER PASSWORD makes an account with your nick \
         as its name."
    } else {
        "New accounts are not taken on this server."
    }));
    out
}

/// To an IRC client that talks to NickServ once logged in.
pub fn irc_logged_in_as(name: &str) -> String {
    notice(&format!("You are logged in as {name}."))
}

/// To an IRC client that parts the room every session can go back to.
pub fn irc_cannot_part(lobby: &str) -> String {
    notice(&format!(
        "You are in one room at a time and {lobby} is home: JOIN another room to leave it."
    ))
}

/// The login deadline passed.
pub fn login_timed_out() -> String {
    error(LOGIN_TIMED_OUT)
}

/// The same, as a transport's own disconnect reason (SSH).
pub const LOGIN_TIMED_OUT: &str = "Login timed out.";

/// Disconnected by `--idle-timeout`.
pub fn idle_timeout(silence: &str) -> String {
    notice(&format!("Disconnected after {silence} of silence."))
}

/// The server stops: every client hears this last.
pub fn shutting_down() -> String {
    notice("Server is shutting down. Bye.")
}

/// The client's account was deleted (`clear-auth`, `purge-auth` from a shell).
pub fn account_removed() -> String {
    notice("Your account was removed by the server operator.")
}

/// `/quit`.
pub fn bye() -> String {
    notice("Bye.")
}

/// Refusals at accept. Each says when a try can work: after a wait the limiter computed, or
/// after something the client can do.
pub fn too_many_connections(max: usize) -> String {
    error(&format!(
        "Too many connections from your address ({max} at once). Close one, then try again."
    ))
}

/// Over `--connect-rate`: the next connection fits after `wait`.
pub fn connecting_too_fast(wait: Duration) -> String {
    error(&format!(
        "Too many new connections from your address. Try again in {}.",
        in_words(wait)
    ))
}

pub fn too_many_pending() -> String {
    error("Too many connections from your address are logging in at once. Finish or close one, then try again.")
}

/// A PROXY protocol header from an address that is not a trusted proxy.
pub fn untrusted_proxy_header() -> String {
    error("A PROXY header is taken only from a trusted proxy (--trusted-proxy); closing.")
}

pub fn server_full(max: usize) -> String {
    // Nothing says when someone leaves; people come and go within minutes.
    error(&format!(
        "Server is full ({max} {}). Try again in a few minutes.",
        if max == 1 { "client" } else { "clients" }
    ))
}

/// A store call failed; nothing was changed.
pub fn database_unavailable() -> String {
    error("Server error: the database is unavailable. Try again.")
}

// ---- logging in and registering ----

/// The password lock: no try can work before `wait` has passed.
pub fn logins_locked(wait: Duration) -> String {
    error(&format!(
        "Too many failed logins. Try again in {}.",
        in_words(wait)
    ))
}

/// A wait as people say it, rounded up (a client told "1 minute" must not be refused after
/// it): `45 seconds`, `1 minute`, `10 minutes`, `1 hour and 5 minutes`.
pub fn in_words(wait: Duration) -> String {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let count = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if secs < 60 {
        return count(secs.max(1), "second");
    }
    let minutes = secs.div_ceil(60);
    match (minutes / 60, minutes % 60) {
        (0, m) => count(m, "minute"),
        (h, 0) => count(h, "hour"),
        (h, m) => format!("{} and {}", count(h, "hour"), count(m, "minute")),
    }
}

pub fn too_many_failed_attempts() -> String {
    // The connection closes; connecting again gives 3 more tries unless the lock across
    // connections holds, and then that lock says how long.
    error("Too many failed attempts. Connect again to try again.")
}

pub fn wrong_password() -> String {
    error("Wrong password.")
}

pub fn cannot_check_password() -> String {
    error("Server error: cannot check this password now.")
}

pub fn no_such_user_register(quoted: &str) -> String {
    error(&format!(
        "No such user: {quoted}. Use /register to create it."
    ))
}

pub fn password_too_short(min: usize) -> String {
    error(&format!("Password too short: at least {min} characters."))
}

pub fn invalid_name(quoted: &str, rule: &str) -> String {
    error(&format!("Invalid name: {quoted}. Names are {rule}."))
}

pub fn registration_closed() -> String {
    error("Registration is closed on this server. Ask the operator for an account.")
}

/// Over `--register-rate`: the next account fits after `wait`.
pub fn too_many_new_accounts(wait: Duration) -> String {
    error(&format!(
        "Too many new accounts from your address. Try again in {}.",
        in_words(wait)
    ))
}

pub fn cannot_register() -> String {
    error("Server error: cannot register now.")
}

pub fn name_taken(quoted: &str) -> String {
    error(&format!(
        "The name {quoted} is taken. Choose another, or log in with its password."
    ))
}

pub fn name_too_close(existing: &str) -> String {
    error(&format!(
        "That name is too close to an existing one: {existing}."
    ))
}

pub fn bad_token() -> String {
    error("Unknown or expired token.")
}

pub fn too_many_sessions(name: &str, max: usize) -> String {
    error(&format!(
        "Too many sessions for {name} ({max}). Close one, then try again."
    ))
}

pub fn hello(name: &str) -> String {
    notice(&format!("Hello, {name}!"))
}

pub fn your_token(token: &str) -> String {
    notice(&format!(
        "Your session token: {token}; next time type /token {token} to log in without a password."
    ))
}

pub fn new_user(name: &str, min: usize) -> String {
    notice(&format!(
        "New user {name}. Choose a password (at least {min} characters), or an empty line to go back.",
    ))
}

/// `ssh carol@HOST` for an account: before its password.
pub fn password_for(name: &str) -> String {
    notice(&format!(
        "Logging in as {name}: your password, or press Enter to give another name."
    ))
}

/// `ssh carol@HOST` for a name no account has: before the new password.
pub fn name_is_free(name: &str, min: usize) -> String {
    notice(&format!(
        "{name} is free: choose a password (at least {min} characters) to make the account, \
         or press Enter to give another name."
    ))
}

pub fn passwords_differ() -> String {
    error("Passwords do not match. Try again.")
}

pub fn logged_out() -> String {
    notice("Logged out: your session token no longer works. Bye.")
}

// ---- input ----

pub fn not_utf8() -> String {
    error("That line is not valid UTF-8; it was ignored.")
}

/// The same, as the WebSocket's close reason (status 1007): there the line ends the
/// connection, as RFC 6455 requires.
pub const NOT_UTF8_CLOSE: &str = "That line is not valid UTF-8.";

pub fn line_too_long(max: usize) -> String {
    error(&format!(
        "Line too long (over {max} bytes); it was ignored."
    ))
}

pub fn history_unavailable() -> String {
    error("Could not load the history.")
}

// ---- commands ----

pub fn unknown_command(quoted: &str) -> String {
    error(&format!("Unknown command /{quoted}. Type /help."))
}

pub fn already_logged_in() -> String {
    error("You are already logged in.")
}

pub fn log_in_first(command: &str) -> String {
    error(&format!(
        "Log in first to use /{command}: type your name, or /token TOKEN."
    ))
}

pub fn operators_only() -> String {
    error("Only operators can do that.")
}

pub fn usage(text: &str) -> String {
    error(&format!("Usage: {text}"))
}

pub fn no_such_user(quoted: &str) -> String {
    error(&format!("No such user: {quoted}"))
}

// ---- the hub ----

/// Many joins and leaves in one batch, as one line.
pub fn crowd(came: usize, went: usize) -> String {
    notice(&match (came, went) {
        (0, _) => format!("{went} people left"),
        (_, 0) => format!("{came} people joined"),
        _ => format!("{came} people joined, {went} left"),
    })
}

/// `say` from the console.
pub fn from_server(text: &str) -> String {
    notice(&format!("[server] {text}"))
}

pub fn not_stored() -> String {
    error("Your message was not sent: the server could not store it.")
}

// ---- SSH keys ----

pub fn not_a_public_key() -> String {
    error("That is not an OpenSSH public key (paste a line of ~/.ssh/id_ed25519.pub).")
}

pub fn key_not_storable() -> String {
    error("That key cannot be stored.")
}

/// The command that logs `name` in over SSH: `ssh -p 2222 alice@chat.example.org` (no `-p`
/// for 22; no `name@` without a name); `HOST` with a word on it when the operator named no
/// host (`--public-host`).
pub fn ssh_login(port: u16, name: Option<&str>, host: Option<&str>) -> String {
    let port = match port {
        22 => String::new(),
        port => format!("-p {port} "),
    };
    let name = name.map_or_else(String::new, |n| format!("{n}@"));
    match host {
        Some(host) => format!("ssh {port}{name}{host}"),
        None => format!("ssh {port}{name}HOST (HOST: the address you reach this server by)"),
    }
}

/// `ssh HOST command`: a chat runs no commands. `login`: [`ssh_login`] without a name.
pub fn ssh_exec_refused(login: &str) -> String {
    format!("besedka is a chat: connect without a command, e.g. {login}\r\n")
}

/// `/key add`; `login`: the command that logs in with it ([`ssh_login`]), or `None` if the
/// server does not listen for SSH.
pub fn key_added(fingerprint: &str, login: Option<&str>) -> String {
    notice(&match login {
        Some(login) => format!("Key {fingerprint} added: {login} logs you in with it."),
        None => format!("Key {fingerprint} added (this server does not listen for SSH now)."),
    })
}

/// `/key`'s line in `/help`, with the command that logs this user in.
pub fn key_help(login: Option<&str>) -> String {
    match login {
        Some(login) => format!("SSH keys that log you in: {login}"),
        None => "SSH keys that log you in (when the server listens for SSH)".into(),
    }
}

pub fn key_already_yours(fingerprint: &str) -> String {
    notice(&format!("You have key {fingerprint} already."))
}

pub fn key_taken() -> String {
    error("That key belongs to another account.")
}

pub fn keys_full(max: usize) -> String {
    error(&format!("You have {max} keys already; remove one first."))
}

pub fn no_keys() -> String {
    notice("You have no SSH keys. /key add ssh-ed25519 AAAA… adds one.")
}

pub fn key_removed(fingerprint: &str) -> String {
    notice(&format!("Key {fingerprint} removed."))
}

pub fn no_such_key(fingerprint: &str) -> String {
    error(&format!(
        "You have no key {fingerprint}; /key list shows yours."
    ))
}

pub fn keys_usage() -> String {
    usage("/key add ssh-ed25519 AAAA… [comment] | /key list | /key remove SHA256:…")
}

/// `/key list`: a header, then a line a key.
pub fn keys_header(n: usize) -> String {
    notice(&format!("Your SSH keys ({n}):"))
}

pub fn key_line(
    fingerprint: &str,
    algorithm: &str,
    comment: &str,
    added: &str,
    used: &str,
) -> String {
    notice(&format!(
        "{fingerprint} {algorithm} {comment} (added {added}, last used {used})"
    ))
}

/// `/history`.
pub fn history_usage(max: u32) -> String {
    usage(&format!("/history [N], N from 1 to {max}."))
}

pub fn history_header(n: usize) -> String {
    notice(&format!("Last {n} message(s):"))
}

/// `/help`: a header, a line a command, and how plain lines work.
pub fn help_header() -> String {
    notice("Commands:")
}

pub fn help_line(usage: &str, help: &str) -> String {
    notice(&format!("  {usage:<30} {help}"))
}

pub fn help_chat_footer() -> String {
    help_line("//TEXT", "send a line that starts with /")
        + &notice("Any other line is sent to everyone in your room.")
}

pub fn help_login_footer() -> String {
    notice("Or type your name to log in or register.")
}

// ---- moderation, as the user it falls on sees it ----

/// A timestamp of the schema (`2026-11-24T14:33:53Z`) as a ban shows it: `2026-11-24 14:33 UTC`.
pub fn until(t: &str) -> String {
    format!("{} UTC", t.get(..16).unwrap_or(t).replacen('T', " ", 1))
}

/// `! You are banned until … UTC: REASON.`
pub fn banned(expires_at: Option<&str>, reason: &str) -> String {
    let mut s = "You are banned".to_string();
    if let Some(t) = expires_at {
        s += &format!(" until {}", until(t));
    }
    if !reason.is_empty() {
        s += &format!(": {reason}");
    }
    error(&format!("{}.", s.trim_end_matches('.')))
}

/// What a muted user is told when they try to speak.
pub fn muted(expires_at: Option<&str>) -> String {
    match expires_at {
        Some(t) => error(&format!("You are muted until {}.", until(t))),
        None => error("You are muted."),
    }
}

/// `: REASON`, or nothing.
fn because(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

/// To the user kicked, by an operator (`Some(name)`) or the server console (`None`).
pub fn kicked(by: Option<&str>, reason: &str) -> String {
    match by {
        None => notice(&format!(
            "You were disconnected by the server operator{}.",
            because(reason)
        )),
        Some(by) => notice(&format!(
            "You were disconnected by {by}{}.",
            because(reason)
        )),
    }
}

/// To everyone else.
pub fn kick_announcement(by: &str, name: &str, reason: &str) -> String {
    notice(&format!("{by} kicked {name}{}", because(reason)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_is_said_in_words_and_never_shorter_than_it_is() {
        let ms = Duration::from_millis;
        for (wait, words) in [
            (ms(1), "1 second"),
            (ms(1_000), "1 second"),
            (ms(44_100), "45 seconds"),
            (ms(59_000), "59 seconds"),
            (ms(59_001), "1 minute"),
            (ms(60_000), "1 minute"),
            (ms(60_001), "2 minutes"),
            (ms(577_000), "10 minutes"),
            (ms(3_600_000), "1 hour"),
            (ms(3_700_000), "1 hour and 2 minutes"),
            (ms(7_200_000), "2 hours"),
        ] {
            assert_eq!(in_words(wait), words, "{wait:?}");
        }
        assert_eq!(
            logins_locked(ms(577_400)),
            "! Too many failed logins. Try again in 10 minutes.\r\n"
        );
    }
}
