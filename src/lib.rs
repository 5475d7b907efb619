//! besedka: a multi-threaded chat server for telnet, `nc`, SSH, TLS and browser clients,
//! kept in one SQLite file (or, for several nodes, in PostgreSQL).
//!
//! # Layout
//!
//! The data path of a chat line, in file names: socket → a way in
//! (`server/transport/*`, a clean line from `server/telnet.rs`) → `server/session` (a user's
//! message) → `server/hub` (committed by `store/messages.rs`, then fanned out through
//! `server/outbox.rs`) → every recipient's socket.
//!
//! The layers, bottom first. Each module uses only modules of its own layer or of layers
//! below it, and no two modules use each other; `tests/layers.rs` reads `src/` and fails,
//! naming the file and line, on any `use` against this order (its `LAYERS` table is this
//! list).
//!
//! 1. [`error`] (the error enum), [`private_files`] (files only the server's user reads),
//!    [`memory`] (the memory policy: glibc's allocator and the threads' stacks).
//! 2. [`store`] — all SQL, one file per table, behind `store::Conn` (SQLite and
//!    PostgreSQL, each connection keeping its prepared statements: `store::statements`);
//!    inside it, `store::notify` (the channels) sits below the tables that use it.
//! 3. [`auth`] (argon2id, tokens), [`logging`] (`fern`, the `logs` table's sink).
//! 4. Connection primitives, knowing nothing of sessions, rooms or how a way in works:
//!    [`server::socket`] (the socket, the connection id, the way it came in),
//!    [`server::telnet`] (the line codec), [`server::protocol`] (names, cleaning, how server
//!    lines look), [`server::text`] (what the server says), [`server::wire`] (what a client
//!    reads: the line protocol or IRC messages), [`server::outbox`] (a client's
//!    bounded send queue), [`server::limits`] (per-address, per-account, per-user counters),
//!    [`server::bucket`] (the token bucket that paces a user's lines), [`server::searches`]
//!    (searches running at once, per user and on the server),
//!    [`server::quiet`] (a log throttle), [`server::metrics`] (the counters),
//!    [`server::proxy`] (the client's address from a trusted proxy), [`server::door`] (the
//!    budgets of connections logging in and of users, one login deadline), `server::pool`
//!    (the worker threads).
//! 5. What is in force: [`server::moderation`] (bans, mutes, operators; how they read),
//!    [`server::config`] (`serve`'s options as the server takes them), [`server::refusals`]
//!    (refusals in the log: why, the flag behind it, one line per reason every 10 s).
//! 6. [`server::hub`] — one thread that owns delivery order: stages a batch, commits it,
//!    fans it out per room; rooms and presence (this node's and the others').
//! 7. One client: [`server::shared`] (what every session shares), [`server::session`] (read,
//!    log in, speak), [`server::commands`] (the slash-commands: one table, central checks),
//!    [`server::connection`] (greeting, login, chat, in order), [`server::moderator`] (ban,
//!    mute, kick, op), [`server::cleanup`] (removing lines: `/delete`, purges).
//! 8. The ways in: `server::admit` (who is let in), [`server::transport`] (telnet/nc, TLS,
//!    SSH, the web page with its WebSocket and `/metrics`).
//! 9. The server: [`server`] (start, shutdown), `server::accept` (an accept thread per
//!    listener), [`server::janitor`], `server::operator` (status, pause, say…),
//!    `server::reload` (a reread configuration put in force),
//!    `server::listen` (several nodes: wakes the hub when another commits).
//! 10. The front: [`console`] (the operator console; on a terminal, its prompt), [`admin`]
//!     (what the admin CLI changes).
//!
//! Above the library, the binary: `main.rs` and its own modules `cli` (the subcommands),
//! `bench` (`besedka bench`, the load generator) and `echo` (the lab's thread-per-client
//! echo server), which `tests/layers.rs` leaves out.

pub mod admin;
pub mod auth;
pub mod console;
pub mod error;
pub mod logging;
pub mod memory;
pub mod private_files;
pub mod server;
pub mod store;

pub use error::{Error, Result};
