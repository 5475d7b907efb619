//! The slash-commands: one table, with the checks every command needs done centrally
//! (which stage it belongs to, how many words it takes) before its handler runs.

use super::hub::Event;
use super::protocol::{error, history_lines, notice};
use super::session::{End, Login, Session};
use crate::store::messages::{self, Kind};
use crate::store::{tokens, users};

/// Where a command may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before login.
    Login,
    /// After login.
    Chat,
}

/// What the session does after a command.
pub enum Flow {
    Continue,
    /// Close the connection (quit, logout, too many failures).
    Close,
    /// The login stage is over.
    LoggedIn(Login),
}

/// Largest `/history N`.
pub const MAX_HISTORY: u32 = 500;
/// `/history` without N.
pub const DEFAULT_HISTORY: u32 = 20;

type Handler = fn(&mut Session, &str) -> Result<Flow, End>;

struct Command {
    name: &'static str,
    /// What follows the name, for usage and help.
    args: &'static str,
    help: &'static str,
    /// `None`: usable in both stages.
    stage: Option<Stage>,
    /// Words the arguments must have at least / at most.
    min_words: usize,
    max_words: usize,
    run: Handler,
}

const ANY: usize = usize::MAX;

const COMMANDS: &[Command] = &[
    Command {
        name: "register",
        args: "NAME PASSWORD",
        help: "create an account and log in",
        stage: Some(Stage::Login),
        min_words: 2,
        max_words: ANY,
        run: register,
    },
    Command {
        name: "login",
        args: "NAME PASSWORD",
        help: "log in with a password",
        stage: Some(Stage::Login),
        min_words: 2,
        max_words: ANY,
        run: login,
    },
    Command {
        name: "token",
        args: "TOKEN",
        help: "log in with a session token",
        stage: Some(Stage::Login),
        min_words: 1,
        max_words: 1,
        run: token,
    },
    Command {
        name: "who",
        args: "",
        help: "who is online",
        stage: Some(Stage::Chat),
        min_words: 0,
        max_words: 0,
        run: who,
    },
    Command {
        name: "msg",
        args: "NAME TEXT",
        help: "a private message to NAME",
        stage: Some(Stage::Chat),
        min_words: 2,
        max_words: ANY,
        run: msg,
    },
    Command {
        name: "me",
        args: "TEXT",
        help: "an action: * NAME TEXT",
        stage: Some(Stage::Chat),
        min_words: 1,
        max_words: ANY,
        run: me,
    },
    Command {
        name: "history",
        args: "[N]",
        help: "the last N messages you can see (default 20, at most 500)",
        stage: Some(Stage::Chat),
        min_words: 0,
        max_words: 1,
        run: history,
    },
    Command {
        name: "logout",
        args: "",
        help: "end this session's token and disconnect",
        stage: Some(Stage::Chat),
        min_words: 0,
        max_words: 0,
        run: logout,
    },
    Command {
        name: "quit",
        args: "",
        help: "disconnect (your token stays valid)",
        stage: None,
        min_words: 0,
        max_words: 0,
        run: quit,
    },
    Command {
        name: "help",
        args: "",
        help: "this list",
        stage: None,
        min_words: 0,
        max_words: ANY,
        run: help,
    },
];

fn usage(c: &Command) -> String {
    if c.args.is_empty() {
        format!("/{}", c.name)
    } else {
        format!("/{} {}", c.name, c.args)
    }
}

/// Runs a `/command` line typed at `stage`.
pub fn dispatch(s: &mut Session, line: &str, stage: Stage) -> Result<Flow, End> {
    let body = &line[1..];
    let (word, args) = match body.split_once(char::is_whitespace) {
        Some((w, a)) => (w, a.trim()),
        None => (body, ""),
    };
    let Some(cmd) = COMMANDS.iter().find(|c| c.name.eq_ignore_ascii_case(word)) else {
        let shown: String = word.chars().take(32).collect();
        s.send(&error(&format!("Unknown command /{shown}. Type /help.")));
        return Ok(Flow::Continue);
    };
    match (cmd.stage, stage) {
        (Some(Stage::Login), Stage::Chat) => {
            s.send(&error("You are already logged in."));
            return Ok(Flow::Continue);
        }
        (Some(Stage::Chat), Stage::Login) => {
            s.send(&error(&format!(
                "Log in first to use /{}: type your name, or /token TOKEN.",
                cmd.name
            )));
            return Ok(Flow::Continue);
        }
        _ => {}
    }
    let words = args.split_whitespace().count();
    if words < cmd.min_words || words > cmd.max_words {
        s.send(&error(&format!("Usage: {}", usage(cmd))));
        return Ok(Flow::Continue);
    }
    (cmd.run)(s, args)
}

/// Splits `NAME REST` where REST may contain spaces (a password, a message).
fn name_and_rest(args: &str) -> (&str, &str) {
    match args.split_once(char::is_whitespace) {
        Some((name, rest)) => (name, rest.trim_start()),
        None => (args, ""),
    }
}

fn register(s: &mut Session, args: &str) -> Result<Flow, End> {
    let (name, password) = name_and_rest(args);
    Ok(s.register(name, password))
}

fn login(s: &mut Session, args: &str) -> Result<Flow, End> {
    let (name, password) = name_and_rest(args);
    match s.db(|c| users::find(c, name)) {
        Some(Some((user, hash))) => Ok(s.check_password(user, &hash, password)),
        Some(None) => {
            s.send(&error(&format!(
                "No such user: {name}. Use /register to create it."
            )));
            Ok(Flow::Continue)
        }
        None => Ok(Flow::Continue),
    }
}

fn token(s: &mut Session, args: &str) -> Result<Flow, End> {
    Ok(s.redeem_token(args))
}

fn who(s: &mut Session, _: &str) -> Result<Flow, End> {
    let _ = s.shared.hub.send(Event::Who { conn: s.conn });
    Ok(Flow::Continue)
}

fn msg(s: &mut Session, args: &str) -> Result<Flow, End> {
    let (name, text) = name_and_rest(args);
    let body = super::protocol::clean(text);
    if body.trim().is_empty() {
        s.send(&error("Usage: /msg NAME TEXT"));
        return Ok(Flow::Continue);
    }
    match s.db(|c| users::find(c, name)) {
        Some(Some((to, _))) => {
            let _ = s.shared.hub.send(Event::Private {
                conn: s.conn,
                to,
                body,
            });
        }
        Some(None) => s.send(&error(&format!("No such user: {name}"))),
        None => {}
    }
    Ok(Flow::Continue)
}

fn me(s: &mut Session, args: &str) -> Result<Flow, End> {
    s.say(Kind::Me, args);
    Ok(Flow::Continue)
}

fn history(s: &mut Session, args: &str) -> Result<Flow, End> {
    let n = if args.is_empty() {
        DEFAULT_HISTORY
    } else {
        match args.parse::<u32>() {
            Ok(n) if (1..=MAX_HISTORY).contains(&n) => n,
            _ => {
                s.send(&error(&format!(
                    "Usage: /history [N], N from 1 to {MAX_HISTORY}."
                )));
                return Ok(Flow::Continue);
            }
        }
    };
    let Some(user_id) = s.login.as_ref().map(|l| l.user.id) else {
        return Ok(Flow::Continue);
    };
    if let Some(msgs) = s.db(|c| messages::visible(c, user_id, n, None)) {
        let mut out = notice(&format!("Last {} message(s):", msgs.len()));
        out.push_str(&history_lines(&msgs, s.shared.config.max_backlog / 2));
        s.send(&out);
    }
    Ok(Flow::Continue)
}

fn logout(s: &mut Session, _: &str) -> Result<Flow, End> {
    if let Some(hash) = s.login.as_ref().map(|l| l.token_hash.clone()) {
        if s.db(|c| tokens::revoke(c, &hash)).is_none() {
            return Ok(Flow::Continue);
        }
    }
    s.send(&notice(
        "Logged out: your session token no longer works. Bye.",
    ));
    Ok(Flow::Close)
}

fn quit(s: &mut Session, _: &str) -> Result<Flow, End> {
    s.send(&notice("Bye."));
    Ok(Flow::Close)
}

fn help(s: &mut Session, _: &str) -> Result<Flow, End> {
    let stage = if s.login.is_some() {
        Stage::Chat
    } else {
        Stage::Login
    };
    let mut out = notice("Commands:");
    for c in COMMANDS
        .iter()
        .filter(|c| c.stage.is_none_or(|st| st == stage))
    {
        out.push_str(&notice(&format!("  {:<22} {}", usage(c), c.help)));
    }
    if stage == Stage::Chat {
        out.push_str(&notice(&format!(
            "  {:<22} {}",
            "//TEXT", "send a line that starts with /"
        )));
        out.push_str(&notice("Any other line is sent to everyone."));
    } else {
        out.push_str(&notice("Or type your name to log in or register."));
    }
    s.send(&out);
    Ok(Flow::Continue)
}
