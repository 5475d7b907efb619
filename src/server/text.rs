//! What the server says to a client about the connection itself, whoever says it (the accept
//! thread, the session, the hub, the shutdown): one place, so the same event reads the same
//! from every path. A command's own answers stay next to the command.

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

/// Refusals at accept.
pub fn too_many_connections() -> String {
    error("Too many connections from your address.")
}

pub fn connecting_too_fast() -> String {
    error("Too many connections from your address. Try again later.")
}

pub fn server_full(max: usize) -> String {
    error(&format!("Server is full ({max} clients). Try again later."))
}

/// A store call failed; nothing was changed.
pub fn database_unavailable() -> String {
    error("Server error: the database is unavailable. Try again.")
}
