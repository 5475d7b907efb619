//! `/key add KEY`, `/key list`, `/key remove FINGERPRINT`: the SSH keys that log a user in.

use russh::keys::{HashAlg, PublicKey};

use super::name_and_rest;
use crate::server::protocol::{clean, error, notice};
use crate::server::session::{End, Flow, Session};
use crate::store::ssh_keys::{self, Added, MAX_PER_USER};

const USAGE: &str =
    "Usage: /key add ssh-ed25519 AAAA… [comment] | /key list | /key remove SHA256:…";

pub fn key(s: &mut Session, args: &str) -> Result<Flow, End> {
    let Some(user_id) = s.login.as_ref().map(|l| l.user.id) else {
        return Ok(Flow::Continue);
    };
    let (verb, rest) = name_and_rest(args);
    match verb {
        "add" => add(s, user_id, rest),
        "list" if rest.is_empty() => list(s, user_id),
        "remove" if !rest.is_empty() && !rest.contains(' ') => remove(s, user_id, rest),
        _ => s.send(&error(USAGE)),
    }
    Ok(Flow::Continue)
}

fn add(s: &mut Session, user_id: i64, text: &str) {
    let mut key = match PublicKey::from_openssh(text) {
        Ok(key) => key,
        Err(_) => {
            s.send(&error(
                "That is not an OpenSSH public key (paste a line of ~/.ssh/id_ed25519.pub).",
            ));
            return;
        }
    };
    let comment = clean(key.comment().as_str_lossy())
        .chars()
        .take(100)
        .collect::<String>();
    key.set_comment("");
    let Ok(public) = key.to_openssh() else {
        s.send(&error("That key cannot be stored."));
        return;
    };
    let algorithm = key.algorithm().to_string();
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    let added = s.db(|c| ssh_keys::add(c, user_id, &algorithm, &public, &fingerprint, &comment));
    match added {
        Some(Added::Added) => {
            log::info!("{}: added SSH key {fingerprint}", s.addr);
            s.send(&notice(&format!(
                "Key {fingerprint} added: ssh -p PORT NAME@HOST with it logs you in."
            )));
        }
        Some(Added::Already) => s.send(&notice(&format!("You have key {fingerprint} already."))),
        Some(Added::Taken) => s.send(&error("That key belongs to another account.")),
        Some(Added::Full) => s.send(&error(&format!(
            "You have {MAX_PER_USER} keys already; remove one first."
        ))),
        None => {}
    }
}

fn list(s: &mut Session, user_id: i64) {
    let Some(keys) = s.db(|c| ssh_keys::list(c, user_id)) else {
        return;
    };
    if keys.is_empty() {
        s.send(&notice(
            "You have no SSH keys. /key add ssh-ed25519 AAAA… adds one.",
        ));
        return;
    }
    let mut text = notice(&format!("Your SSH keys ({}):", keys.len()));
    for k in keys {
        let used = k.last_used_at.as_deref().unwrap_or("never");
        text.push_str(&notice(&format!(
            "{} {} {} (added {}, last used {used})",
            k.fingerprint, k.algorithm, k.comment, k.created_at
        )));
    }
    s.send(&text);
}

fn remove(s: &mut Session, user_id: i64, fingerprint: &str) {
    match s.db(|c| ssh_keys::remove(c, user_id, fingerprint)) {
        Some(true) => s.send(&notice(&format!("Key {fingerprint} removed."))),
        Some(false) => s.send(&error(&format!(
            "You have no key {fingerprint}; /key list shows yours."
        ))),
        None => {}
    }
}
