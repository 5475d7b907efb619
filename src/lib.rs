//! besedka: a multi-threaded chat server for telnet, `nc`, SSH, TLS and browser clients,
//! kept in one SQLite file (or, for several nodes, in PostgreSQL).
//!
//! # Layout
//!
//! The data path of a chat line runs down the file list:
//!
//! - [`server`] — start, shutdown ([`server::start`]); the shared state ([`server::Shared`]);
//!   - `server::accept` — an accept thread per listener; `server::admit` — who is let in
//!     (bans, per-address limits, the door's budgets, a trusted proxy's client);
//!   - [`server::door`] — connections logging in and users logged in, each with its own
//!     budget, and one login deadline from accept;
//!   - [`server::proxy`] — the client's real address from a trusted proxy (PROXY protocol,
//!     `Forwarded`/`X-Forwarded-For`);
//!   - [`server::transport`] — the ways in (telnet/nc, TLS, SSH, the web page's WebSocket),
//!     each handing the session a stream socket; [`server::transport::telnet`] turns bytes
//!     into clean lines; [`server::transport::web`] also serves the page and `/metrics`;
//!   - [`server::connection`] — one connection's life in order: greeting, login, chat;
//!   - [`server::session`] — one client's state and what it can do (read, log in, speak);
//!   - [`server::commands`] — the slash-commands as one table with central checks;
//!   - [`server::limits`] — per-address, per-account and per-user counters;
//!   - [`server::moderation`] — bans, mutes and operators in force, and the actions on them;
//!   - [`server::hub`] — one thread: commits each batch of messages, then fans it out to
//!     the rooms; with several nodes, also what the others committed and who is on them;
//!   - [`server::outbox`] — a client's bounded, non-blocking send queue;
//!   - `server::pool` — the worker threads, started with clients and ended when idle;
//!   - [`server::text`] — what the server says about the connection itself;
//!   - [`server::janitor`] — rereads bans, deletes expired ones, prunes old messages;
//!   - [`server::protocol`] — names, text cleaning, how server lines look;
//!   - `server::operator` — what the operator does to a running server (status, pause, say);
//!   - `server::listen` — several nodes: wakes the hub when another node commits;
//!   - [`server::metrics`] — the counters `/metrics` exports.
//! - [`auth`] — argon2id password hashes (bounded concurrency) and session tokens.
//! - [`store`] — all SQL: the backends (SQLite, PostgreSQL) behind one `Conn`, the pool,
//!   migrations, one file per table.
//! - [`logging`] — `fern` setup.
//! - [`private_files`] — the database and the log file are the server's alone (mode 0600).
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
pub mod private_files;
pub mod server;
pub mod store;

pub use error::{Error, Result};
