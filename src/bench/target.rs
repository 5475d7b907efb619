//! The server side of a run: where the clients connect, who they log in as and how, and the
//! process to measure if known (a server the bench started, or `--pid`).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use super::accounts;
use super::args::{BenchArgs, Proto, Server};
use super::client::{Framing, Login};
use super::driver::Plan;
use super::ngircd::Ngircd;
use super::spawn::{Running, Spawned};
use super::LOBBY;

pub(super) struct Target {
    /// The node or nodes the clients connect to, in turn.
    pub addrs: Vec<SocketAddr>,
    pub pid: Option<u32>,
    pub spawned: Option<Box<dyn Running>>,
    pub plans: Vec<Plan>,
    /// The tokens file and what it held (with --addr --tokens).
    pub tokens: Option<(PathBuf, accounts::Tokens)>,
}

/// The target of one run: `server` is besedka or ngircd (`both` is resolved by the caller).
pub(super) fn target(args: &BenchArgs, server: Server, proto: Proto) -> Result<Target, String> {
    let names = accounts::names(&args.prefix, args.clients as usize);
    let framing = match (server, proto) {
        (Server::Besedka, Proto::Line) => Framing::Line,
        (Server::Besedka, Proto::Irc) => Framing::IrcAccount,
        _ => Framing::IrcNick,
    };
    let plan = |name: String, login: Login| Plan {
        name,
        framing,
        login,
        room: LOBBY.into(),
    };
    if args.spawn && server == Server::Ngircd {
        let ngircd = Ngircd::start()?;
        return Ok(Target {
            addrs: vec![ngircd.addr],
            pid: Some(ngircd.pid()),
            spawned: Some(Box::new(ngircd)),
            plans: names
                .into_iter()
                .map(|n| plan(n, Login::Password))
                .collect(),
            tokens: None,
        });
    }
    if args.spawn {
        let (server, tokens) = Spawned::start(
            &names,
            &args.password,
            &args.serve_args,
            args.server_bin.as_deref(),
            proto == Proto::Irc,
        )?;
        let plans = names
            .into_iter()
            .zip(tokens)
            .map(|(name, t)| plan(name, Login::Token(t)))
            .collect();
        return Ok(Target {
            addrs: vec![server.addr],
            pid: Some(server.pid()),
            spawned: Some(Box::new(server)),
            plans,
            tokens: None,
        });
    }
    let text = args
        .addr
        .as_deref()
        .ok_or("give --addr HOST:PORT or --spawn")?;
    let mut addrs = Vec::new();
    for one in text.split(',') {
        addrs.push(
            one.to_socket_addrs()
                .map_err(|e| format!("cannot resolve {one}: {e}"))?
                .next()
                .ok_or_else(|| format!("{one} resolves to no address"))?,
        );
    }
    let known = match &args.tokens {
        Some(path) => accounts::read(path)?,
        None => accounts::Tokens::new(),
    };
    let mut plans = accounts::plans(names, &known);
    for p in &mut plans {
        p.framing = framing;
    }
    Ok(Target {
        addrs,
        pid: args.pid,
        spawned: None,
        plans,
        tokens: args.tokens.clone().map(|p| (p, known)),
    })
}
