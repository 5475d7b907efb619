//! An IRC line as a client sends it: `[@tags] [:source] COMMAND params… [:trailing]`.
//! Tags and a source from a client mean nothing to the server and are skipped.

/// One message from a client.
#[derive(Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// The command, upper-cased (`PRIVMSG`, `CAP`, a numeric).
    pub command: String,
    pub params: Vec<&'a str>,
}

impl<'a> Message<'a> {
    /// Parameter `i`, if the client gave it.
    pub fn param(&self, i: usize) -> Option<&'a str> {
        self.params.get(i).copied()
    }
}

/// The message on a line (without its line end); `None` for a line with no command.
pub fn parse(line: &str) -> Option<Message<'_>> {
    let mut rest = line.trim_start_matches(' ');
    for mark in ['@', ':'] {
        if rest.starts_with(mark) {
            rest = rest.split_once(' ')?.1.trim_start_matches(' ');
        }
    }
    let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if command.is_empty() {
        return None;
    }
    let mut params = Vec::new();
    loop {
        let r = rest.trim_start_matches(' ');
        if r.is_empty() {
            break;
        }
        if let Some(trailing) = r.strip_prefix(':') {
            params.push(trailing);
            break;
        }
        match r.split_once(' ') {
            Some((p, more)) => {
                params.push(p);
                rest = more;
            }
            None => {
                params.push(r);
                break;
            }
        }
    }
    Some(Message {
        command: command.to_ascii_uppercase(),
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_messages() {
        let m = parse("@time=x :me PRIVMSG #lobby :hello  there").unwrap();
        assert_eq!(m.command, "PRIVMSG");
        assert_eq!(m.params, ["#lobby", "hello  there"]);
        assert_eq!(parse("cap ls 302").unwrap().params, ["ls", "302"]);
        assert_eq!(parse("QUIT").unwrap().params, Vec::<&str>::new());
        assert_eq!(parse("TOPIC #a :").unwrap().params, ["#a", ""]);
        assert_eq!(parse("   "), None);
        assert_eq!(parse(":only-a-source"), None);
    }
}
