//! IRCv3 `draft/account-registration`: `REGISTER <account> <email|*> <password>` creates an
//! account and logs the client in, before the end of registration or after it
//! (`before-connect`), through the session's own registration: the name rule, the
//! password length, `--register-rate` and `--no-register` are telnet's. besedka keeps no
//! e-mail addresses (one given is not stored) and verifies nothing: `VERIFY` is answered
//! so. The account may be named apart from the nick (`custom-account-name`): the nick the
//! server gives is the account's name anyway.

use super::message::Message;
use crate::server::session::{Flow, Refusal, Session};
use crate::server::wire;
use crate::store::users;

/// `REGISTER account email password` from a client not logged in, whose nick is `nick` (if
/// it gave one). Answered `REGISTER SUCCESS` and `900` (the client is logged in), or
/// `FAIL REGISTER CODE account :why`.
pub fn register(s: &mut Session, nick: Option<&str>, m: &Message) -> Flow {
    let shown = nick.unwrap_or("*");
    let (Some(account), Some(_email), Some(password)) = (m.param(0), m.param(1), m.param(2))
    else {
        let why = ":Not enough parameters (REGISTER ACCOUNT EMAIL|* PASSWORD)";
        let reply = wire::numeric(461, shown, &format!("REGISTER {why}"));
        s.send_bytes(reply.into_bytes());
        return Flow::Continue;
    };
    let name = match (account, nick) {
        ("*", Some(nick)) => nick,
        ("*", None) => {
            fail(s, "REGISTER", "NEED_NICK", "*", "Send NICK first, or name the account");
            return Flow::Continue;
        }
        (account, _) => account,
    };
    let name = users::normalize(name);
    match s.try_register(&name, password) {
        Ok(Flow::LoggedIn(login)) => {
            let account = login.user.name.clone();
            let success = format!(
                ":{} REGISTER SUCCESS {account} :Account created; you are logged in\r\n",
                wire::SERVER
            );
            let mask = wire::mask(&account);
            let logged = format!("{mask} {account} :You are now logged in as {account}");
            s.send_bytes((success + &wire::numeric(900, shown, &logged)).into_bytes());
            Flow::LoggedIn(login)
        }
        // Refused at the last checks (a ban on the address, the session limit), told why.
        Ok(Flow::Close) => Flow::Close,
        Ok(Flow::Continue) => {
            let why = "The account could not be made now. Try again.";
            fail(s, "REGISTER", "TEMPORARILY_UNAVAILABLE", &name, why);
            Flow::Continue
        }
        Err(r) => {
            let code = match r.why {
                Refusal::BadName | Refusal::TooClose => "BAD_ACCOUNT_NAME",
                Refusal::Taken => "ACCOUNT_EXISTS",
                Refusal::WeakPassword => "WEAK_PASSWORD",
                Refusal::Closed | Refusal::TooMany | Refusal::Unavailable | Refusal::Failed => {
                    "TEMPORARILY_UNAVAILABLE"
                }
            };
            fail(s, "REGISTER", code, &name, &r.text);
            match r.why {
                Refusal::Failed => Flow::Close,
                _ => Flow::Continue,
            }
        }
    }
}

/// `VERIFY account code` before login: nothing waits for a code here.
pub fn verify(s: &mut Session, m: &Message) {
    let account = m.param(0).unwrap_or("*");
    let why = "No verification is needed here: REGISTER logs you in at once";
    fail(s, "VERIFY", "INVALID_CODE", account, why);
}

/// `REGISTER` or `VERIFY` from a client logged in already, as `account`.
pub fn already(s: &mut Session, command: &str, account: &str) {
    let why = format!("You are logged in as {account} already");
    fail(s, command, "ALREADY_AUTHENTICATED", account, &why);
}

fn fail(s: &mut Session, command: &str, code: &str, context: &str, why: &str) {
    s.send_bytes(wire::fail(command, code, context, why).into_bytes());
}
