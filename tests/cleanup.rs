//! Removing lines (issue 21's cleanup): `/delete ID` and `/purge NAME PERIOD` by an
//! operator, `delete` and `purge-lines` on the console, `besedka purge-lines` beside a running
//! server. Removed lines leave `/history`, `/search`, `/mentions`, the login's replay and
//! IRC's CHATHISTORY, as tombstones that keep their ids and order; the operators online are
//! told and the log says who did it; an IRC client with `draft/message-redaction` gets
//! `REDACT`; a web page takes the lines out of its open log. On SQLite and on PostgreSQL.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::irc;
use common::webdriver::{self, Driver};
use common::{bin, Client, Server};

const QUIET: Duration = Duration::from_millis(300);

/// Sends `line` and returns what came back: its first line (waited for: a search paces the
/// user's next lines) and what follows until `QUIET`.
fn ask(c: &mut Client, line: &str) -> String {
    c.send(line);
    c.expect("\r\n") + &c.drain(QUIET)
}

/// `alice` (an operator), `bob` and `carol`, logged in on the line protocol.
fn three(server: &mut Server) -> (Client, Client, Client) {
    let (alice, _) = server.register("alice", "secret12");
    let (bob, _) = server.register("bob", "secret12");
    let (carol, _) = server.register("carol", "secret12");
    server.ask("op alice", "alice is now an operator.");
    (alice, bob, carol)
}

/// The id `/history` shows an operator in front of the line whose text ends with `body`.
fn shown_id(history: &str, body: &str) -> i64 {
    let line = history
        .lines()
        .find(|l| l.starts_with('#') && l.ends_with(body))
        .unwrap_or_else(|| panic!("no line {body:?} in {history:?}"));
    let id = line.strip_prefix('#').and_then(|l| l.split(' ').next());
    id.and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("no id in front of {line:?}"))
}

/// Waits (bounded) until `/search WORD` finds `n` lines for `c`: the index is the janitor's.
fn searched(c: &mut Client, word: &str, n: usize) {
    let start = Instant::now();
    loop {
        let got = ask(c, &format!("/search {word}"));
        if got.contains(&format!("* Found {n} line(s)")) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{got:?}");
    }
}

/// `(id, body, removed_by)` of every stored message, in id order.
fn rows(server: &Server) -> Vec<String> {
    server.texts(
        "SELECT CAST(id AS TEXT) || ':' || body || ':' || COALESCE(removed_by, '-') \
         FROM messages ORDER BY id",
    )
}

#[test]
fn operators_remove_lines_from_history_search_mentions_and_replay() {
    common::backend::on_each_backend(|| {
        let mut server = Server::start(&[]);
        let (mut alice, mut bob, mut carol) = three(&mut server);
        for line in [
            "spam one carol",
            "spam two carol",
            "/msg carol spam in private",
        ] {
            bob.send(line);
        }
        carol.send("carol is here");
        carol.expect("] bob -> carol: spam in private\r\n");
        searched(&mut carol, "spam", 3);
        let history = ask(&mut alice, "/history");
        let one = shown_id(&history, "bob: spam one carol");
        // Ids are an operator's: carol's /history shows none.
        let plain = ask(&mut carol, "/history");
        assert!(plain.contains("\r\n[20"), "{plain:?}");
        assert!(
            !plain.contains("#") && !plain.contains('\u{1}'),
            "{plain:?}"
        );

        // The central check: not an operator, not a removal.
        assert_eq!(
            ask(&mut carol, &format!("/delete {one}")),
            "! Only operators can do that.\r\n"
        );
        assert_eq!(
            ask(&mut carol, "/purge bob 1h"),
            "! Only operators can do that.\r\n"
        );
        alice.send(&format!("/delete #{one}"));
        alice.expect(&format!(
            "* [server] alice removed line #{one} of bob's (delete)\r\n"
        ));
        server.expect_log(&format!(
            "moderation: alice removed line #{one} of bob's (delete)"
        ));
        assert_eq!(
            ask(&mut alice, &format!("/delete {one}")),
            format!("! Line #{one} was removed already, by alice.\r\n")
        );
        assert!(ask(&mut alice, "/delete 999999").starts_with("! There is no line #999999 "));
        assert!(ask(&mut alice, "/delete abc").starts_with("! abc is not a line's number"));
        assert!(ask(&mut alice, "/purge bob 5x").starts_with("! 5x is not a period"));
        assert!(ask(&mut alice, "/purge nobody 1h").starts_with("! No such user: nobody"));
        // Operators do not remove each other's lines (the console may).
        assert!(ask(&mut alice, "/purge alice 1h").starts_with("! alice is an operator"));

        alice.send("/purge bob 1h");
        alice.expect("* [server] alice removed 2 lines of bob's (purge, 1h)\r\n");
        server.expect_log("moderation: alice removed 2 lines of bob's (purge, 1h)");
        assert!(ask(&mut alice, "/purge bob 1h").starts_with("! bob has no lines left"));
        // Announced to operators only, and nothing at all reaches a terminal's reader.
        let told = carol.drain(QUIET);
        assert!(
            !told.contains("removed") && !told.contains('\u{1}'),
            "{told:?}"
        );

        // Gone from what carol can ask for, and from her next login's replay.
        let history = ask(&mut carol, "/history");
        // Not even as an empty line: a tombstone's body is empty.
        assert!(history.contains("carol: carol is here"), "{history:?}");
        assert!(
            !history.contains("] bob") && !history.contains("spam"),
            "{history:?}"
        );
        assert_eq!(ask(&mut carol, "/search spam"), "* Nothing found.\r\n");
        assert_eq!(
            ask(&mut carol, "/mentions"),
            "* No recent line names you.\r\n"
        );
        drop(carol);
        let mut carol = server.login("carol", "secret12");
        let replay = carol.drain(QUIET);
        assert!(
            !replay.contains("] bob") && !replay.contains("spam"),
            "{replay:?}"
        );
        // Tombstones: the rows stay, in order, emptied, with who removed them.
        let stored = rows(&server);
        let bob_rows: Vec<&String> = stored.iter().filter(|r| !r.contains("carol is")).collect();
        assert_eq!(bob_rows.len(), 3, "{stored:?}");
        assert_eq!(bob_rows[0], &format!("{one}::alice"));
        assert!(
            bob_rows[1..].iter().all(|r| r.ends_with("::alice")),
            "{stored:?}"
        );
        assert!(
            stored.iter().any(|r| r.ends_with(":carol is here:-")),
            "{stored:?}"
        );
        let ids: Vec<i64> = stored
            .iter()
            .map(|r| r.split(':').next().unwrap().parse().unwrap())
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        drop(bob);
    });
}

/// Runs the admin CLI on the server's database.
fn cli(server: &Server, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("--db")
        .arg(&server.db)
        .args(args)
        .output()
        .unwrap()
}

fn said(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

#[test]
fn the_console_and_the_cli_purge_lines() {
    common::backend::on_each_backend(|| {
        let mut server = Server::start(&[]);
        let (mut alice, mut bob, mut carol) = three(&mut server);
        bob.send("first flood");
        bob.send("second flood");
        carol.expect("] bob: second flood\r\n");
        server.ask("purge-lines", "Usage: purge-lines NAME PERIOD");
        server.ask("purge-lines bob soon", "Error: soon is not a period");
        server.ask("purge-lines nobody 1h", "Error: No such user: nobody");
        server.ask(
            "purge-lines bob 1h",
            "Removed 2 line(s) of bob's from the last 1h.",
        );
        alice.expect("* [server] console removed 2 lines of bob's (purge, 1h)\r\n");
        server.expect_log("moderation: console removed 2 lines of bob's (purge, 1h)");
        server.ask("delete 999999", "Error: There is no line #999999");

        // The CLI writes the database; the running server hears of it within seconds and
        // tells its operators.
        bob.send("third flood");
        carol.expect("] bob: third flood\r\n");
        let o = cli(&server, &["purge-lines", "bob", "1h"]);
        assert_eq!(o.status.code(), Some(0), "{}", said(&o));
        assert!(
            said(&o).starts_with("Removed 1 line(s) of bob's from the last 1h"),
            "{}",
            said(&o)
        );
        alice.expect("* [server] console removed line #");
        alice.expect(" of bob's (purge, 1h)\r\n");
        let o = cli(&server, &["purge-lines", "bob", "nonsense"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            said(&o).contains("nonsense is not a period"),
            "{}",
            said(&o)
        );
        let o = cli(&server, &["purge-lines", "nobody", "1h"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(said(&o).contains("No such user: nobody"), "{}", said(&o));
        let history = ask(&mut carol, "/history");
        assert!(
            !history.contains("] bob") && !history.contains("flood"),
            "{history:?}"
        );
    });
}

#[test]
fn an_irc_client_that_asked_gets_redact_and_chathistory_leaves_removed_lines_out() {
    common::backend::on_each_backend(|| {
        let mut server = irc::server(&[]);
        let (_, _) = server.register("alice", "secret12");
        let (mut bob, _) = server.register("bob", "secret12");
        drop(server.register("dave", "secret12"));
        drop(server.register("erin", "secret12"));
        let caps = "message-tags draft/message-redaction draft/chathistory batch";
        let mut wants = irc::login_with_caps(&server, "dave", "secret12", caps);
        let mut plain = irc::sasl_login(&server, "erin", "secret12");
        plain.send("PRIVMSG #lobby :a kept line");
        wants.expect(" PRIVMSG #lobby :a kept line\r\n");
        bob.send("redact me");
        let line = wants.expect(" PRIVMSG #lobby :redact me\r\n");
        let id: i64 = line
            .rsplit("msgid=")
            .next()
            .and_then(|t| t.split([' ', ';']).next())
            .and_then(|i| i.parse().ok())
            .unwrap_or_else(|| panic!("no msgid in {line:?}"));
        plain.expect(" PRIVMSG #lobby :redact me\r\n");
        bob.send("/msg dave private redact me");
        wants.expect(" PRIVMSG dave :private redact me\r\n");
        server.ask(
            &format!("delete {id}"),
            &format!("Removed line #{id} of bob's."),
        );
        wants.expect(&format!(":besedka REDACT #lobby {id}\r\n"));
        // The client without the capability: nothing, before a later line in the order.
        bob.send("after the removal");
        let got = plain.expect(" PRIVMSG #lobby :after the removal\r\n");
        assert!(!got.contains("REDACT"), "{got}");
        server.ask("purge-lines bob 1h", "Removed 2 line(s)");
        wants.expect(" REDACT dave ");
        wants.send("CHATHISTORY LATEST #lobby * 10");
        let batch = wants.expect(":besedka BATCH -");
        assert!(!batch.contains("redact me"), "{batch:?}");
        assert!(
            batch.contains("a kept line"),
            "the batch has what stays: {batch:?}"
        );
        wants.send("CHATHISTORY LATEST bob * 10");
        let batch = wants.expect(":besedka BATCH -");
        assert!(!batch.contains("redact me"), "{batch:?}");
    });
}

#[test]
fn a_purge_takes_the_lines_out_of_an_open_web_page() {
    if let Err(why) = webdriver::available() {
        common::skip("the test", &why);
        return;
    }
    let driver = Driver::start();
    common::backend::on_each_backend(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::start(&["--web-addr", "127.0.0.1:0"]);
        let (_, _) = server.register("carol", "secret12");
        let (mut dave, _) = server.register("dave", "secret12");
        dave.send("a kept line from before");
        let (mut bob, _) = server.register("bob", "secret12");
        bob.send("spam from before the page");
        let b = driver.browser(&dir.path().join("profile"));
        b.go(&format!("http://{}/", server.web_addr.unwrap()));
        b.wait_for(
            "the login form",
            "return !document.getElementById('login').classList.contains('hidden')",
        );
        b.type_in("#name", "carol");
        b.type_in("#password", "secret12");
        b.click("#go");
        b.wait_for_text("spam from before the page");
        b.wait_for_text("a kept line from before");
        bob.send("spam while the page is open");
        bob.send("/me spams again");
        b.wait_for_text("spams again");
        // Each shown line carries its id; none shows in the text.
        let ids = b.script("return document.querySelectorAll('#log [data-id]').length");
        assert!(ids.as_i64().unwrap_or(0) >= 3, "{ids}");
        let log = b.script("return document.getElementById('log').textContent");
        assert!(!log.as_str().unwrap_or("").contains('\u{1}'), "{log}");
        server.ask("purge-lines bob 1h", "Removed 3 line(s)");
        b.wait_for(
            "the purged lines gone",
            "return !document.getElementById('log').textContent.includes('spam')",
        );
        // What was not removed stays: a line shown before the purge, and a later one.
        let log = b.script("return document.getElementById('log').textContent");
        assert!(
            log.as_str()
                .unwrap_or("")
                .contains("a kept line from before"),
            "{log}"
        );
        bob.send("an honest line");
        b.wait_for_text("an honest line");
    });
}
