//! Tab completion at the console's prompt: the first word completes to a command's name;
//! the word after a command that takes a NAME (kick, ban, mute, op…) to the name of a user
//! online on this node, asked of the running server as `who` does.

use std::sync::Arc;

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::Context;

use crate::server::Server;

/// The line editor's helper: completion only (no hints, colours or multi-line input).
pub struct Complete {
    pub server: Arc<Server>,
}

impl Complete {
    fn online(&self) -> Vec<String> {
        match self.server.status().online {
            Ok(users) => users.into_iter().map(|u| u.name).collect(),
            // Completion offers nothing rather than an error in the middle of the line.
            Err(_) => Vec::new(),
        }
    }
}

/// The candidates among `names` that start with `typed`, ignoring case (commands are
/// matched so, and names are unique without regard to case), sorted, without repeats.
fn starting_with(names: impl Iterator<Item = String>, typed: &str) -> Vec<String> {
    let typed = typed.to_lowercase();
    let mut found: Vec<String> = names
        .filter(|n| n.to_lowercase().starts_with(&typed))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Every command's names, in `help`'s order.
fn command_names() -> impl Iterator<Item = &'static str> {
    super::COMMANDS.iter().flat_map(|c| c.names.iter().copied())
}

/// Whether `word` is a command whose first argument is a user's name.
fn takes_name(word: &str) -> bool {
    super::find(word).is_some_and(|c| c.args.starts_with("NAME"))
}

/// Whether `word` is a command that takes arguments.
fn takes_args(word: &str) -> bool {
    super::find(word).is_some_and(|c| !c.args.is_empty())
}

impl Completer for Complete {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        // The word under the cursor starts after the last whitespace before it.
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map_or(0, |(at, c)| at + c.len_utf8());
        let typed = &before[start..];
        let earlier: Vec<&str> = before[..start].split_whitespace().collect();
        let pairs = match earlier.as_slice() {
            [] => starting_with(command_names().map(String::from), typed)
                .into_iter()
                .map(|name| Pair {
                    // A command with arguments gets its space, ready for the first one.
                    replacement: if takes_args(&name) {
                        format!("{name} ")
                    } else {
                        name.clone()
                    },
                    display: name,
                })
                .collect(),
            [command] if takes_name(command) => starting_with(self.online().into_iter(), typed)
                .into_iter()
                .map(|name| Pair {
                    display: name.clone(),
                    replacement: name,
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok((start, pairs))
    }
}

impl Hinter for Complete {
    type Hint = String;
}

impl Highlighter for Complete {}

impl Validator for Complete {}

impl rustyline::Helper for Complete {}
