//! `/key add KEY`, `/key list`, `/key remove FINGERPRINT`: the SSH keys that log a user in.

use crate::server::text;
use russh::keys::{HashAlg, PublicKey};

use super::name_and_rest;
use crate::server::protocol::clean;
use crate::server::session::{End, Flow, Session};
use crate::store::ssh_keys::{self, Added, MAX_PER_USER};

pub fn key(s: &mut Session, args: &str) -> Result<Flow, End> {
    let Some(user_id) = s.login.as_ref().map(|l| l.user.id) else {
        return Ok(Flow::Continue);
    };
    let (verb, rest) = name_and_rest(args);
    match verb {
        "add" => add(s, user_id, rest),
        "list" if rest.is_empty() => list(s, user_id),
        "remove" if !rest.is_empty() && !rest.contains(' ') => remove(s, user_id, rest),
        _ => s.send(&text::keys_usage()),
    }
    Ok(Flow::Continue)
}

fn add(s: &mut Session, user_id: i64, text: &str) {
    let mut key = match PublicKey::from_openssh(text) {
        Ok(key) => key,
        Err(_) => {
            s.send(&text::not_a_public_key());
            return;
        }
    };
    let comment = clean(key.comment().as_str_lossy())
        .chars()
        .take(100)
        .collect::<String>();
    key.set_comment("");
    let Ok(public) = key.to_openssh() else {
        s.send(&text::key_not_storable());
        return;
    };
    let algorithm = key.algorithm().to_string();
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    let added = s.db(|c| ssh_keys::add(c, user_id, &algorithm, &public, &fingerprint, &comment));
    match added {
        Some(Added::Added) => {
            log::info!("{}: added SSH key {fingerprint}", s.addr);
            s.send(&text::key_added(&fingerprint, login(s).as_deref()));
        }
        Some(Added::Already) => s.send(&text::key_already_yours(&fingerprint)),
        Some(Added::Taken) => s.send(&text::key_taken()),
        Some(Added::Full) => s.send(&text::keys_full(MAX_PER_USER)),
        None => {}
    }
}

/// The command that logs this session's user in with a key here, if SSH listens.
pub fn login(s: &Session) -> Option<String> {
    let listening = s.shared.ssh_port?;
    let name = s.login.as_ref().map(|l| l.user.name.as_str());
    let config = s.shared.config.get();
    let port = config.public_port.unwrap_or(listening);
    Some(text::ssh_login(port, name, config.public_host.as_deref()))
}

fn list(s: &mut Session, user_id: i64) {
    let Some(keys) = s.db(|c| ssh_keys::list(c, user_id)) else {
        return;
    };
    if keys.is_empty() {
        s.send(&text::no_keys());
        return;
    }
    let mut out = text::keys_header(keys.len());
    for k in keys {
        let used = k.last_used_at.as_deref().unwrap_or("never");
        out.push_str(&text::key_line(
            &k.fingerprint,
            &k.algorithm,
            &k.comment,
            &k.created_at,
            used,
        ));
    }
    s.send(&out);
}

fn remove(s: &mut Session, user_id: i64, fingerprint: &str) {
    match s.db(|c| ssh_keys::remove(c, user_id, fingerprint)) {
        Some(true) => s.send(&text::key_removed(fingerprint)),
        Some(false) => s.send(&text::no_such_key(fingerprint)),
        None => {}
    }
}
