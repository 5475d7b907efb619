//! `--config FILE`: `besedka serve`'s options in a TOML file, one key per option with the
//! option's own name (`max-clients = 1024`, `allow-ip = ["10.0.0.0/24"]`, `no-register =
//! true`).
//!
//! The file is turned into the command-line arguments it stands for and parsed by the same
//! clap definitions as the command line, so a key means exactly what its flag means, with
//! the same checks and defaults, and nothing is described twice. Precedence: a flag on the
//! command line, then its environment variable, then the file, then the default. A key the
//! command line or the environment already sets is left out (for a repeatable option the
//! command line's list replaces the file's).
//!
//! Every key and value is checked here first, one at a time, so an error names the file, the
//! line and the key (clap alone could only name the flag).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, FromArgMatches};
use toml::{Spanned, Value};

use super::{Cli, Failure};

/// Options that are not settings: they cannot come from the file.
const NOT_KEYS: &[&str] = &["config", "help", "version"];

/// A file's settings as arguments for `serve`, and where they came from.
#[derive(Debug, Clone)]
pub struct FileArgs {
    pub path: PathBuf,
    /// `--key=value` (or `--flag`) for every key the command line and environment leave to
    /// the file.
    pub args: Vec<OsString>,
    /// How many keys the file sets.
    pub keys: usize,
}

/// The command line parsed, with `serve --config FILE`'s settings under it.
pub struct Parsed {
    pub cli: Cli,
    /// `serve`'s own matches (`None` for other commands): what a reload compares.
    pub serve: Option<ArgMatches>,
    /// The config file's settings, when there is one.
    pub file: Option<FileArgs>,
}

/// `serve`'s command, with the global options (`--db`, `--log-level`) among its own.
fn serve_command() -> Command {
    let mut cli = super::command();
    // Globals reach the subcommands when the command is built.
    cli.build();
    cli.find_subcommand("serve")
        .cloned()
        .unwrap_or_else(|| Command::new("serve"))
}

/// Parses `argv` (the program's arguments, its name first). A usage error, `--help` and
/// `--version` end the process as clap does; a config file's error is a [`Failure`] with
/// code 2 and the file's line.
pub fn parse_command_line(argv: &[OsString]) -> Result<Parsed, Failure> {
    let matches = match super::command().try_get_matches_from(argv) {
        Ok(matches) => matches,
        // An option whose partner is in the config file (`--metrics-token` from the
        // environment, `web-addr` in the file) is whole only with the file: read leniently
        // first, and let the parse with the file under it judge.
        Err(e) if e.kind() == clap::error::ErrorKind::MissingRequiredArgument => {
            let lenient = super::command()
                .ignore_errors(true)
                .try_get_matches_from(argv)
                .ok()
                .filter(|m| {
                    m.subcommand_matches("serve")
                        .is_some_and(|s| s.get_one::<PathBuf>("config").is_some())
                });
            lenient.unwrap_or_else(|| e.exit())
        }
        Err(e) => e.exit(),
    };
    let path = match matches.subcommand() {
        Some(("serve", serve)) => serve.get_one::<PathBuf>("config").cloned(),
        _ => None,
    };
    let Some(path) = path else {
        let serve = matches.subcommand_matches("serve").cloned();
        let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        return Ok(Parsed {
            cli,
            serve,
            file: None,
        });
    };
    let given = matches.subcommand_matches("serve");
    let file = read(&path, &serve_command(), given)?;
    let mut all = argv.to_vec();
    all.extend(file.args.iter().cloned());
    let matches = super::command()
        .try_get_matches_from(&all)
        .map_err(|e| usage(format!("{}: {}", path.display(), first_line(&e))))?;
    let cli = Cli::from_arg_matches(&matches)
        .map_err(|e| usage(format!("{}: {}", path.display(), first_line(&e))))?;
    Ok(Parsed {
        cli,
        serve: matches.subcommand_matches("serve").cloned(),
        file: Some(file),
    })
}

/// `besedka config check PATH`: the file alone (with the environment), as `serve` would
/// take it. Returns how many settings it has.
pub fn check(path: &Path) -> Result<usize, Failure> {
    let file = read(path, &serve_command(), None)?;
    let mut all: Vec<OsString> = vec!["besedka".into(), "serve".into()];
    all.extend(file.args.iter().cloned());
    super::command()
        .try_get_matches_from(&all)
        .map_err(|e| usage(format!("{}: {}", path.display(), first_line(&e))))?;
    Ok(file.keys)
}

/// The options whose values differ between two parses of `serve` (by their long names).
pub fn changed(old: &ArgMatches, new: &ArgMatches) -> Vec<String> {
    let raw = |m: &ArgMatches, id: &str| -> Option<Vec<OsString>> {
        m.try_get_raw(id)
            .ok()
            .flatten()
            .map(|values| values.map(|v| v.to_os_string()).collect())
    };
    serve_command()
        .get_arguments()
        .filter(|a| !NOT_KEYS.contains(&a.get_id().as_str()))
        .filter(|a| raw(old, a.get_id().as_str()) != raw(new, a.get_id().as_str()))
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect()
}

fn usage(message: String) -> Failure {
    Failure { message, code: 2 }
}

/// clap's message on one line, without `error: ` and the usage that follows it.
fn first_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let said: Vec<&str> = rendered
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let said = said.join(" ");
    said.strip_prefix("error: ")
        .map_or(said.clone(), str::to_string)
}

/// Reads `path` and turns it into arguments for `serve` (`cmd`), leaving out what `given`
/// (the arguments already parsed, `None` for `config check`) takes from the command line or
/// the environment. The error is one line: `FILE:LINE: key: why`.
/// A file that cannot be read is a runtime failure (code 1); what it says, a usage one (2).
pub fn read(path: &Path, cmd: &Command, given: Option<&ArgMatches>) -> Result<FileArgs, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
    warn_if_shared(path, &text);
    parse(path, &text, cmd, given).map_err(usage)
}

/// A file others can read must not hold a secret (`metrics-token`, a database URL with a
/// password): said on standard error, as `serve` starts or a reload happens.
fn warn_if_shared(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    let secret = text.lines().any(|l| {
        let l = l.trim_start();
        l.starts_with("metrics-token") || (l.starts_with("db") && l.contains('@'))
    });
    let shared = std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0);
    if secret && shared {
        eprintln!(
            "besedka: warning: {} holds a secret but others can read it; chmod 600 it",
            path.display()
        );
    }
}

/// [`read`] on text already read.
pub fn parse(
    path: &Path,
    text: &str,
    cmd: &Command,
    given: Option<&ArgMatches>,
) -> Result<FileArgs, String> {
    let shown = path.display();
    let line = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let table: BTreeMap<Spanned<String>, Spanned<Value>> = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map_or(String::new(), |s| format!("{}: ", line(s.start)));
        format!("{shown}:{at}not valid TOML: {}", e.message().trim_end())
    })?;
    // In the file's order, so the first error reported is the first in the file.
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    let mut args = Vec::new();
    for (key, value) in entries {
        let at = |why: String| {
            format!(
                "{shown}:{}: {}: {why}",
                line(key.span().start),
                key.as_ref()
            )
        };
        let arg = setting(cmd, key.as_ref()).ok_or_else(|| at(unknown(cmd, key.as_ref())))?;
        let from_elsewhere = given.and_then(|m| m.value_source(arg.get_id().as_str()));
        let mut these = Vec::new();
        to_args(arg, key.as_ref(), value.as_ref(), &mut these).map_err(at)?;
        if !matches!(
            from_elsewhere,
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            args.extend(these);
        }
    }
    Ok(FileArgs {
        path: path.to_path_buf(),
        args,
        keys: table.len(),
    })
}

/// The option a key names: `serve`'s long flags, the global ones (`db`, `log-level`)
/// included.
fn setting<'a>(cmd: &'a Command, key: &str) -> Option<&'a Arg> {
    cmd.get_arguments()
        .find(|a| a.get_long() == Some(key) && !NOT_KEYS.contains(&key))
}

/// Why a key is unknown, with the nearest known one when there is one.
fn unknown(cmd: &Command, key: &str) -> String {
    let near = cmd
        .get_arguments()
        .filter_map(Arg::get_long)
        .filter(|k| !NOT_KEYS.contains(k))
        .map(|k| (distance(k, key), k))
        .min();
    match near {
        Some((d, k)) if key.len() > 3 && (d <= 2 || k.contains(key)) => {
            format!("unknown key (did you mean '{k}'?)")
        }
        _ => "unknown key (a key is one of `besedka serve --help`'s options without the \
              leading --)"
            .into(),
    }
}

/// Levenshtein distance: for the did-you-mean of a mistyped key.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

/// Appends the arguments a key's value stands for, each value checked by the option's own
/// parser (so `max-clients = 0` is refused with clap's reason).
fn to_args(arg: &Arg, key: &str, value: &Value, out: &mut Vec<OsString>) -> Result<(), String> {
    if matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse) {
        return match value {
            Value::Boolean(true) => {
                out.push(format!("--{key}").into());
                Ok(())
            }
            Value::Boolean(false) => Ok(()),
            _ => Err("expects true or false".into()),
        };
    }
    let repeatable = matches!(arg.get_action(), ArgAction::Append);
    let values: Vec<&Value> = match value {
        Value::Array(items) if repeatable => items.iter().collect(),
        Value::Array(_) => return Err("takes one value, not a list".into()),
        one => vec![one],
    };
    for v in values {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Integer(n) => n.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Boolean(_) => return Err("expects a value, not true or false".into()),
            Value::Datetime(_) | Value::Array(_) | Value::Table(_) => {
                return Err(if repeatable {
                    "expects a string, a number or a list of them".into()
                } else {
                    "expects a string or a number".into()
                })
            }
        };
        check_value(arg, &text)?;
        out.push(format!("--{key}={text}").into());
    }
    Ok(())
}

/// Runs `text` through the option's own value parser (on a one-option command: the real
/// option's ties to others, like `--tls-cert` needing `--tls-addr`, are checked later, on
/// the whole), and words clap's complaint for a file: `0 is not in 1..=65536`.
fn check_value(arg: &Arg, text: &str) -> Result<(), String> {
    let probe = Command::new("value").no_binary_name(true).arg(
        Arg::new("v")
            .long("v")
            .action(ArgAction::Set)
            .allow_hyphen_values(true)
            .value_parser(arg.get_value_parser().clone()),
    );
    let Err(e) = probe.try_get_matches_from(["--v", text]) else {
        return Ok(());
    };
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or("").trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // "invalid value 'x' for '--v <v>': why" -> "why"
    let mut reason = match first.split_once("': ") {
        Some((_, why)) if !why.is_empty() => why.to_string(),
        _ => format!("invalid value {text:?}"),
    };
    // Rust's words for a number that is not one.
    if reason == "invalid digit found in string" {
        reason = format!("{text:?} is not a whole number");
    }
    if let Some(values) = rendered.lines().find_map(|l| {
        l.trim()
            .strip_prefix("[possible values: ")
            .and_then(|v| v.strip_suffix(']'))
    }) {
        reason = format!("invalid value {text:?} (one of: {values})");
    }
    Err(reason)
}

#[cfg(test)]
mod tests {
    use super::distance;

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("max-clients", "max-clients"), 0);
        assert_eq!(distance("max-client", "max-clients"), 1);
        assert_eq!(distance("max-clinets", "max-clients"), 2);
        assert_eq!(distance("", "abc"), 3);
    }
}
