//! The bench accounts on a server the bench did not start (`--addr`): who logs in how, and
//! the `--tokens` file that lets the next run skip the password work.
//!
//! The first run registers `bench1..benchN` through the protocol (or logs in with the fixed
//! password where they exist), and the server hands each a token; the file keeps them, one
//! `name token` a line. Later runs log in with `/token`, which costs the server a SHA-256
//! instead of an argon2 hash. A token the server refuses falls back to the password.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use super::client::{Client, Login};
use super::driver::Plan;

/// Name → token, as in the file.
pub type Tokens = BTreeMap<String, String>;

/// The bench's account names.
pub fn names(prefix: &str, clients: usize) -> Vec<String> {
    (1..=clients).map(|i| format!("{prefix}{i}")).collect()
}

/// Reads a tokens file; a missing file is an empty one.
pub fn read(path: &Path) -> Result<Tokens, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Tokens::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse(text: &str) -> Result<Tokens, String> {
    let mut tokens = Tokens::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some(name), Some(token), None) => {
                tokens.insert(name.to_string(), token.to_string());
            }
            _ => return Err(format!("line {}: expected `NAME TOKEN`", i + 1)),
        }
    }
    Ok(tokens)
}

/// Each name's login: its token if the file has one, else the password.
pub fn plans(names: Vec<String>, known: &Tokens) -> Vec<Plan> {
    names
        .into_iter()
        .map(|name| {
            let login = match known.get(&name) {
                Some(t) => Login::Token(t.clone()),
                None => Login::Password,
            };
            Plan {
                name,
                framing: super::client::Framing::Line,
                login,
                room: super::LOBBY.into(),
            }
        })
        .collect()
}

/// Writes the file: the tokens the clients hold now, over those it had. Written to a
/// temporary file and renamed, readable by the owner only: tokens are passwords.
pub fn save(path: &Path, mut known: Tokens, clients: &[Client]) -> Result<(), String> {
    for c in clients {
        if let Some(t) = &c.token {
            known.insert(c.name.clone(), t.clone());
        }
    }
    let mut text = String::from("# besedka bench accounts: NAME TOKEN\n");
    for (name, token) in &known {
        text.push_str(&format!("{name} {token}\n"));
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_format() {
        let t = parse("# c\n\nbench1 abc\n  bench2   def  \n").unwrap();
        assert_eq!(t.get("bench1").map(String::as_str), Some("abc"));
        assert_eq!(t.get("bench2").map(String::as_str), Some("def"));
        assert!(parse("bench1\n").unwrap_err().contains("line 1"));
        assert!(parse("a b c\n").is_err());
        let p = plans(names("bench", 3), &t);
        assert!(matches!(&p[0].login, Login::Token(t) if t == "abc"));
        assert!(matches!(p[2].login, Login::Password));
        assert_eq!(p[2].name, "bench3");
    }
}
