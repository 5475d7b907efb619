//! The slash-commands: one table, with the checks every command needs done centrally (which
//! stage it belongs to, whether it needs an operator, how many words it takes) before its
//! handler runs. Handlers live in one file per group.

mod account;
mod chat;
mod keys;
mod moderation;
mod private;
mod rooms;
mod search;

pub use rooms::{open as open_room, still_member, Refused, MAX_TOPIC, ROOMS_LISTED};

use super::protocol::quote;
use super::session::{End, Flow, Session, Stage};
use crate::server::text;
use crate::store::users::name_key;

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
    /// Only operators may use it (and only they see it in /help).
    op: bool,
    /// Words the arguments must have at least / at most.
    min_words: usize,
    max_words: usize,
    run: Handler,
}

const ANY: usize = usize::MAX;

/// A command anyone may use at `stage`.
const fn cmd(
    name: &'static str,
    args: &'static str,
    help: &'static str,
    stage: Option<Stage>,
    words: (usize, usize),
    run: Handler,
) -> Command {
    Command {
        name,
        args,
        help,
        stage,
        op: false,
        min_words: words.0,
        max_words: words.1,
        run,
    }
}

/// An operator's command (chat stage only).
const fn op(
    name: &'static str,
    args: &'static str,
    help: &'static str,
    words: (usize, usize),
    run: Handler,
) -> Command {
    Command {
        op: true,
        ..cmd(name, args, help, Some(Stage::Chat), words, run)
    }
}

const LOGIN: Option<Stage> = Some(Stage::Login);
const CHAT: Option<Stage> = Some(Stage::Chat);

const COMMANDS: &[Command] = &[
    cmd(
        "register",
        "NAME PASSWORD",
        "create an account and log in",
        LOGIN,
        (2, ANY),
        account::register,
    ),
    cmd(
        "login",
        "NAME PASSWORD",
        "log in with a password",
        LOGIN,
        (2, ANY),
        account::login,
    ),
    cmd(
        "token",
        "TOKEN|new",
        "log in with a session token; logged in, 'new' gives you one",
        None,
        (1, 1),
        account::token,
    ),
    cmd(
        "who",
        "[*]",
        "who is in this room (@ marks operators); /who * everyone online, with their rooms",
        CHAT,
        (0, 1),
        chat::who,
    ),
    cmd(
        "join",
        "#ROOM",
        "go to ROOM (made if new; you are in one room at a time)",
        CHAT,
        (1, 1),
        rooms::join,
    ),
    cmd(
        "rooms",
        "",
        "the rooms, busiest first, with their topics",
        CHAT,
        (0, 0),
        rooms::list,
    ),
    cmd(
        "topic",
        "[TEXT | -]",
        "show this room's topic, set it, or clear it (-)",
        CHAT,
        (0, ANY),
        rooms::topic,
    ),
    cmd(
        "msg",
        "NAME TEXT",
        "a private message to NAME",
        CHAT,
        (2, ANY),
        chat::msg,
    ),
    cmd(
        "me",
        "TEXT",
        "an action: * NAME TEXT",
        CHAT,
        (1, ANY),
        chat::me,
    ),
    cmd(
        "history",
        "[N]",
        "the last N lines of this room and your private messages (default 20, at most 500)",
        CHAT,
        (0, 1),
        chat::history,
    ),
    cmd(
        "away",
        "[TEXT]",
        "say you are away (shown by /who and to those who /msg you)",
        CHAT,
        (0, ANY),
        chat::away,
    ),
    cmd("back", "", "you are back", CHAT, (0, 0), chat::back),
    cmd(
        "bell",
        "on|off",
        "whether a line naming you rings your terminal's bell",
        CHAT,
        (1, 1),
        chat::bell,
    ),
    cmd(
        "unread",
        "",
        "the other rooms with new lines since you were last in them",
        CHAT,
        (0, 0),
        chat::unread,
    ),
    cmd(
        "private",
        "on|off",
        "make your room invite-only, or open to all (its maker or an operator)",
        CHAT,
        (1, 1),
        private::private,
    ),
    cmd(
        "invite",
        "NAME",
        "let NAME join your invite-only room (its maker or an operator)",
        CHAT,
        (1, 1),
        private::invite,
    ),
    cmd(
        "uninvite",
        "NAME",
        "take NAME off your room's members (its maker or an operator)",
        CHAT,
        (1, 1),
        private::uninvite,
    ),
    cmd(
        "members",
        "",
        "who may join your invite-only room",
        CHAT,
        (0, 0),
        private::members,
    ),
    cmd(
        "echo",
        "on|off",
        "whether your own lines come back to you with time and name (terminals)",
        CHAT,
        (1, 1),
        chat::echo,
    ),
    cmd(
        "search",
        "[-c N] WORDS [from:NAME] [in:#ROOM] [before:DATE] [after:DATE]",
        "the newest 20 lines you may see that match (words; \"a phrase\"; OR; NOT; pre*); \
         dates 2026-12-01 or 2026-12-01T10:00 (UTC); -c N: N lines around each (at most 5)",
        CHAT,
        (1, ANY),
        search::search,
    ),
    cmd(
        "mentions",
        "[N]",
        "the last N lines that named you (default 10, at most 50)",
        CHAT,
        (0, 1),
        chat::mentions,
    ),
    cmd(
        "key",
        "add KEY | list | remove FINGERPRINT",
        "SSH keys that log you in", // /help adds the command: keys::login
        CHAT,
        (1, ANY),
        keys::key,
    ),
    cmd(
        "logout",
        "",
        "end this session's token and disconnect",
        CHAT,
        (0, 0),
        account::logout,
    ),
    cmd(
        "quit",
        "",
        "disconnect (your token stays valid)",
        None,
        (0, 0),
        account::quit,
    ),
    cmd("help", "", "this list", None, (0, ANY), help),
    op(
        "kick",
        "NAME [REASON]",
        "disconnect NAME (they may come back)",
        (1, ANY),
        moderation::kick,
    ),
    op(
        "ban",
        "NAME [DURATION] [REASON]",
        "ban NAME (30m, 2h, 7d; forever without)",
        (1, ANY),
        moderation::ban,
    ),
    op(
        "unban",
        "NAME",
        "lift NAME's ban",
        (1, 1),
        moderation::unban,
    ),
    op(
        "mute",
        "NAME [DURATION]",
        "NAME may read but not speak",
        (1, ANY),
        moderation::mute,
    ),
    op(
        "unmute",
        "NAME",
        "let NAME speak again",
        (1, 1),
        moderation::unmute,
    ),
    op(
        "delete",
        "ID",
        "remove the line #ID (ids show in your /history, /search, /mentions)",
        (1, 1),
        moderation::delete,
    ),
    op(
        "purge",
        "NAME PERIOD",
        "remove NAME's lines of the last PERIOD (30m, 2h, 7d), up to 10000 at a time",
        (2, 2),
        moderation::purge,
    ),
];

fn usage(c: &Command) -> String {
    if c.args.is_empty() {
        format!("/{}", c.name)
    } else {
        format!("/{} {}", c.name, c.args)
    }
}

/// Whether the session's user is an operator now.
fn is_op(s: &Session) -> bool {
    s.login
        .as_ref()
        .is_some_and(|l| s.shared.moderation.is_op(&name_key(&l.user.name)))
}

/// The line ids in front of the lines `/history`, `/search` and `/mentions` show: an
/// operator's shown (for `/delete`), the web page's hidden.
fn line_ids(s: &Session) -> crate::server::protocol::Ids {
    crate::server::protocol::Ids {
        shown: is_op(s),
        hidden: s.via.line_ids(),
    }
}

/// Whether `name` is one of the slash-commands (any case): IRC runs those it does not know
/// itself through [`dispatch`].
pub fn known(name: &str) -> bool {
    COMMANDS.iter().any(|c| c.name.eq_ignore_ascii_case(name))
}

/// Runs a `/command` line typed at `stage`.
pub fn dispatch(s: &mut Session, line: &str, stage: Stage) -> Result<Flow, End> {
    let body = &line[1..];
    let (word, args) = match body.split_once(char::is_whitespace) {
        Some((w, a)) => (w, a.trim()),
        None => (body, ""),
    };
    let Some(cmd) = COMMANDS.iter().find(|c| c.name.eq_ignore_ascii_case(word)) else {
        s.send(&text::unknown_command(&quote(word)));
        return Ok(Flow::Continue);
    };
    match (cmd.stage, stage) {
        (Some(Stage::Login), Stage::Chat) => {
            s.send(&text::already_logged_in());
            return Ok(Flow::Continue);
        }
        (Some(Stage::Chat), Stage::Login) => {
            s.send(&text::log_in_first(cmd.name));
            return Ok(Flow::Continue);
        }
        _ => {}
    }
    if cmd.op && !is_op(s) {
        s.send(&text::operators_only());
        return Ok(Flow::Continue);
    }
    let words = args.split_whitespace().count();
    if words < cmd.min_words || words > cmd.max_words {
        s.send(&text::usage(&usage(cmd)));
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

fn help(s: &mut Session, _: &str) -> Result<Flow, End> {
    let stage = if s.login.is_some() {
        Stage::Chat
    } else {
        Stage::Login
    };
    let op = is_op(s);
    let mut out = text::help_header();
    for c in COMMANDS
        .iter()
        .filter(|c| c.stage.is_none_or(|st| st == stage) && (op || !c.op))
    {
        // The one line that depends on the server: the real `ssh` command.
        let help = match c.name {
            "key" => text::key_help(keys::login(s).as_deref()),
            _ => c.help.to_string(),
        };
        out.push_str(&text::help_line(&usage(c), &help));
    }
    out.push_str(&if stage == Stage::Chat {
        text::help_chat_footer()
    } else {
        text::help_login_footer()
    });
    s.send(&out);
    Ok(Flow::Continue)
}
