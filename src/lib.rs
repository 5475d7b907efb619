//! besedka: a multi-threaded chat server for telnet and `nc` clients, kept in one SQLite file.
//!
//! # Layout
//!
//! The data path of a chat line runs down the file list:
//!
//! - [`server`] — start, shared state, shutdown ([`server::start`]);
//!   - `server::accept` — the accept thread: bans and per-address limits at the door;
//!   - [`server::telnet`] — bytes in, clean lines out; the only place that knows telnet;
//!   - [`server::connection`] — one connection's life in order: greeting, login, chat;
//!   - [`server::session`] — one client's state and what it can do (read, log in, speak);
//!   - [`server::commands`] — the slash-commands as one table with central checks;
//!   - [`server::limits`] — per-address, per-account and per-user counters;
//!   - [`server::moderation`] — bans, mutes and operators in force, and the actions on them;
//!   - [`server::hub`] — one thread: commits each batch of messages, then fans it out;
//!   - [`server::outbox`] — a client's bounded, non-blocking send backlog;
//!   - [`server::janitor`] — rereads bans, deletes expired ones, prunes old messages;
//!   - [`server::protocol`] — names, text cleaning, how server lines look.
//! - [`auth`] — argon2id password hashes (bounded concurrency) and session tokens.
//! - [`store`] — all SQL: the pool, migrations, one file per table.
//! - [`logging`] — `fern` setup.
//! - [`console`] — the operator console on `serve`'s standard input.
//! - [`admin`] — what the admin CLI changes in the database directly.
//! - [`echo`] — `besedka echo`, the lab's thread-per-client echo server.
//! - [`bench`] — `besedka bench`, the load generator: clients from outside, over TCP.
//! - [`cli`] — the subcommands; `main.rs` only parses arguments and calls into it.
//!
//! Each layer uses only those below it.

pub mod admin;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod console;
pub mod echo;
pub mod error;
pub mod logging;
pub mod server;
pub mod store;

pub use error::{Error, Result};
