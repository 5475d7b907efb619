//! IRC clients (`--irc-addr`): weechat, irssi, bots. The accepted TCP socket is the
//! session's, as for telnet, but what goes over it is IRC: this way in reads IRC messages
//! and turns them into what a session does (log in, say, join, …), and the session and the
//! hub write to it in IRC ([`crate::server::wire`]). Accounts, rooms, limits, bans and
//! history are besedka's: a nick is an account name, a channel is a room.
//!
//! `--ircs-addr` is the same front inside TLS: the TLS way's handshake and relay
//! ([`super::tls::serve`]) with this front on the plain end of the pair.
//!
//! [`registration`]: `CAP`, SASL `PLAIN`, `PASS`, `NICK`/`USER`, NickServ, and
//! [`account`]'s `REGISTER`; [`chat`]: the
//! commands of a logged-in client; [`history`]: `CHATHISTORY`;
//! [`operator`]: `KICK` and `MODE +b` for besedka's operators.

mod account;
mod channels;
mod chat;
mod history;
mod message;
mod operator;
mod registration;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::tls::Certificate;
use super::{listening, say_and_close, Accepted, Bound, Way};
use crate::server::session::Session;
use crate::server::shared::Shared;
use crate::server::socket::{ConnId, Socket, Via};
use crate::server::wire::{self, Wire};

/// Its options.
#[derive(clap::Args, Debug)]
#[group(skip)]
pub struct Options {
    /// Also take IRC clients here (plain text, as on --addr), e.g. 127.0.0.1:6667.
    #[arg(long)]
    pub irc_addr: Option<String>,
    /// Also take IRC clients inside TLS here, e.g. 0.0.0.0:6697, with --tls-addr's
    /// certificate and key (--tls-cert, --tls-key).
    #[arg(long, requires_all = ["tls_cert", "tls_key"], group = super::tls::TLS_LISTENER)]
    pub ircs_addr: Option<String>,
    /// Seconds of silence after which an IRC client is sent a PING; one that answers
    /// nothing for as long again is disconnected.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    pub irc_ping: u64,
}

impl Options {
    pub fn bind(
        &self,
        _state: &std::path::Path,
        all: &super::Options,
    ) -> Result<Vec<Bound>, String> {
        let ping = Duration::from_secs(self.irc_ping);
        let mut bound = Vec::new();
        if let Some(addr) = &self.irc_addr {
            let irc = Irc {
                via: Via::framed("irc", false, Wire::Irc(wire::Caps::NONE)),
                ping,
            };
            bound.push(listening(addr, Arc::new(irc))?);
        }
        let (tls_cert, tls_key) = (&all.tls.tls_cert, &all.tls.tls_key);
        if let (Some(addr), Some(cert), Some(key)) = (&self.ircs_addr, tls_cert, tls_key) {
            let ircs = Ircs {
                certificate: Certificate::new(super::tls::load(cert, key)?),
                via: Via::framed("ircs", false, Wire::Irc(wire::Caps::NONE)),
                ping,
            };
            bound.push(listening(addr, Arc::new(ircs))?);
        }
        Ok(bound)
    }
}

pub struct Irc {
    via: Via,
    ping: Duration,
}

impl Way for Irc {
    fn via(&self) -> Via {
        self.via
    }

    fn refuse(&self, sock: &Socket, text: &str) {
        say_and_close(sock, wire::error(text).as_bytes());
    }

    fn serve(&self, c: Accepted) {
        let _admitted = c.admitted; // released when the session ends, a panic included
        session(&c.shared, c.conn, c.sock, c.addr, self.via, self.ping);
    }
}

/// IRC inside TLS (`--ircs-addr`): the TLS way's handshake and relay, with the IRC front
/// on the plain end of the pair, unchanged.
pub struct Ircs {
    /// The TLS way's certificate and key, reread at a reload as that way's are.
    certificate: Certificate,
    via: Via,
    ping: Duration,
}

impl Way for Ircs {
    fn via(&self) -> Via {
        self.via
    }

    // A refusal is closed without a word (the default): the client expects a handshake.

    fn reload(&self, options: &super::Options) -> Result<(), String> {
        self.certificate.reload(options)
    }

    fn serve(&self, c: Accepted) {
        let _admitted = c.admitted; // released when the session ends, a panic included
        let (shared, conn, addr, via, ping) = (&c.shared, c.conn, c.addr, self.via, self.ping);
        let config = self.certificate.get();
        super::tls::serve(shared, conn, c.sock, addr, config, via, |end| {
            session(shared, conn, end, addr, via, ping)
        });
    }
}

/// An IRC client's session on `sock` (the TCP socket, or the plain end of a TLS relay's
/// pair), from registration to goodbye.
fn session(shared: &Shared, conn: ConnId, sock: Arc<Socket>, addr: SocketAddr, via: Via, ping: Duration) {
    let mut s = match Session::new(shared, conn, sock, addr, via) {
        Ok(s) => s,
        Err(e) => {
            log::warn!("{addr}: cannot set up the connection: {e}");
            return;
        }
    };
    let reason = serve(&mut s, ping);
    match &s.login {
        Some(l) => log::info!("{addr}: {} disconnected ({via}, {reason})", l.user.name),
        None => log::info!("{addr}: disconnected before login ({via}, {reason})"),
    }
}

/// Registration, then chat; returns why the connection ended, for the log.
fn serve(s: &mut Session, ping: Duration) -> &'static str {
    let login = match registration::run(s) {
        Ok(login) => login,
        Err(why) => return why,
    };
    let nick = login.user.name.clone();
    if !s.shared.door.logged_in(s.conn) {
        let shared = s.shared;
        let max = shared.config.get().max_clients;
        shared
            .refusals
            .log(&shared.config.get(), s.addr, crate::server::refusals::Why::Full);
        let full = crate::server::text::server_full(max);
        s.send(&full);
        s.send_bytes(wire::error(&full).into_bytes());
        return "refused: server full";
    }
    let burst = welcome_burst(s, &nick);
    s.send_bytes(burst.into_bytes());
    if !s.join(login) {
        return "refused at login";
    }
    crate::memory::release_unused_stack();
    chat::run(s, ping)
}

/// The registration burst: `RPL_WELCOME` to `RPL_ISUPPORT` (besedka's limits), then the
/// MOTD.
fn welcome_burst(s: &Session, nick: &str) -> String {
    let version = env!("CARGO_PKG_VERSION");
    let config = s.shared.config.get();
    let server = wire::SERVER;
    let mut out = String::new();
    out.push_str(&wire::numeric(1, nick, &format!(":Welcome to besedka, {nick}")));
    out.push_str(&wire::numeric(
        2,
        nick,
        &format!(":Your host is {server}, running version {version}"),
    ));
    out.push_str(&wire::numeric(
        3,
        nick,
        ":This server keeps every line: rooms are channels, accounts are nicks",
    ));
    out.push_str(&wire::numeric(4, nick, &format!("{server} {version} i o")));
    let isupport = format!(
        "CHANTYPES=# CASEMAPPING=rfc8265 NICKLEN={} CHANNELLEN={} TOPICLEN={} LINELEN={} \
         CHANLIMIT=#:{} PREFIX=(o)@ CHANMODES=b,,, NETWORK=besedka UTF8ONLY \
         CHATHISTORY={} MSGREFTYPES=msgid,timestamp :are supported by this server",
        crate::server::protocol::MAX_NAME_CHARS,
        crate::server::protocol::MAX_ROOM_CHARS + 1,
        crate::server::commands::MAX_TOPIC,
        config.max_line,
        channels::MAX_CHANNELS,
        history::MAX_LIMIT,
    );
    out.push_str(&wire::numeric(5, nick, &isupport));
    out.push_str(&motd(nick));
    out
}

/// The message of the day: where IRC and besedka differ.
fn motd(nick: &str) -> String {
    let mut out = wire::numeric(375, nick, &format!(":- {} Message of the day -", wire::SERVER));
    for line in [
        "besedka: one chat by telnet, SSH, the web page and IRC, every line stored.",
        "You start in the room you were last in; JOIN and PART as you like.",
        "Your nick is your account's name.",
    ] {
        out.push_str(&wire::numeric(372, nick, &format!(":- {line}")));
    }
    out.push_str(&wire::numeric(376, nick, ":End of /MOTD command"));
    out
}
