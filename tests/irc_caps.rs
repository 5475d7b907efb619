//! IRCv3 capabilities over the real binary with a raw IRC client: history on JOIN as
//! tagged PRIVMSGs in a chathistory batch, server-time / msgid / account tags on live lines
//! (one room holding clients that asked for different tags), echo-message, extended-join,
//! away-notify, CAP LIST and NAK.

mod common;

use common::irc::{login_with_caps, sasl_login, server};

/// A history line as a client with server-time, message-tags and account-tag in a batch
/// reads it: `@batch=N;time=…;msgid=ID;account=NAME :NAME!… PRIVMSG #room :BODY`.
fn tagged(line: &str) -> Option<(String, i64, String, String)> {
    let (tags, rest) = line.strip_prefix('@')?.split_once(' ')?;
    let mut time = None;
    let mut id = None;
    let mut account = None;
    for tag in tags.split(';') {
        match tag.split_once('=') {
            Some(("time", t)) => time = Some(t.to_string()),
            Some(("msgid", m)) => id = m.parse().ok(),
            Some(("account", a)) => account = Some(a.to_string()),
            _ => {}
        }
    }
    Some((time?, id?, account?, rest.to_string()))
}

#[test]
fn history_on_join_comes_as_tagged_privmsgs_in_a_chathistory_batch() {
    let server = server(&[]);
    let (mut alice, _) = server.register("alice", "secret1");
    alice.send("one");
    alice.send("two");
    alice.send("/join #tea");
    alice.expect("* You are in #tea.");
    alice.send("steeping");
    alice.send("/who");
    alice.expect("* In #tea (1): alice\r\n");
    drop(server.register("bob", "secret2"));
    let caps = "server-time batch message-tags account-tag";
    let mut bob = login_with_caps(&server, "bob", "secret2", caps);
    bob.send("JOIN #tea");
    let got = bob.expect(":besedka 366 bob #tea :End of /NAMES list\r\n");
    let lines: Vec<&str> = got.split("\r\n").collect();
    let open = lines
        .iter()
        .position(|l| l.contains(" BATCH +") && l.ends_with(" chathistory #tea"))
        .unwrap_or_else(|| panic!("no chathistory batch for #tea in {got}"));
    let name = lines[open]
        .split(" BATCH +")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let (time, id, account, rest) = tagged(lines[open + 1]).expect(lines[open + 1]);
    assert!(
        lines[open + 1].starts_with(&format!("@batch={name};")),
        "{got}"
    );
    assert_eq!(rest, ":alice!alice@besedka PRIVMSG #tea :steeping");
    assert_eq!(account, "alice");
    // The time is server-time's (milliseconds, UTC) and the id is the line's in the table.
    assert_eq!(time.len(), "2026-12-01T06:05:57.000Z".len(), "{time}");
    assert!(time.ends_with(".000Z"), "{time}");
    let stored: i64 = server
        .sql()
        .query_row("SELECT id FROM messages WHERE body = 'steeping'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(id, stored);
    assert_eq!(lines[open + 2], format!(":besedka BATCH -{name}"), "{got}");
    // A JOIN of a channel it is in already (#lobby, from login) gets nothing, as on IRC.
    bob.send("JOIN #lobby");
    bob.send("PING :done");
    let more = bob.expect("PONG besedka :done\r\n");
    assert!(!more.contains("JOIN #lobby"), "already in #lobby: {more}");
}

#[test]
fn clients_with_different_tags_share_a_room_and_echo_message_sends_a_line_back() {
    let server = server(&[]);
    drop(server.register("bob", "secret2"));
    drop(server.register("carol", "secret3"));
    let (mut alice, _) = server.register("alice", "secret1");
    let caps = "server-time message-tags echo-message";
    let mut bob = login_with_caps(&server, "bob", "secret2", caps);
    let mut carol = sasl_login(&server, "carol", "secret3");
    bob.send("PRIVMSG #lobby :tagged hello");
    // The sender gets it back (echo-message) with its time and id; carol, who asked for no
    // tags, gets it bare; the telnet user as a line.
    let echo = bob.expect(":bob!bob@besedka PRIVMSG #lobby :tagged hello\r\n");
    let echo = echo.lines().last().unwrap();
    assert!(echo.starts_with("@time="), "{echo}");
    let id: i64 = echo
        .split(';')
        .find_map(|t| t.strip_prefix("msgid="))
        .and_then(|t| t.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    let stored: i64 = server
        .sql()
        .query_row(
            "SELECT id FROM messages WHERE body = 'tagged hello'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(id, stored);
    let bare = carol.expect("PRIVMSG #lobby :tagged hello\r\n");
    assert!(
        bare.ends_with("\n:bob!bob@besedka PRIVMSG #lobby :tagged hello\r\n")
            || bare == ":bob!bob@besedka PRIVMSG #lobby :tagged hello\r\n",
        "{bare}"
    );
    alice.expect("] bob: tagged hello\r\n");
    // Without echo-message, a client's own line is not sent back.
    carol.send("PRIVMSG #lobby :plain hello");
    bob.expect("PRIVMSG #lobby :plain hello\r\n");
    carol.send("PING :after");
    let rest = carol.expect("PONG besedka :after\r\n");
    assert!(!rest.contains("plain hello"), "{rest}");
    // A private message: echoed to its echo-message sender, tagged for the tagged reader.
    bob.send("PRIVMSG carol :psst");
    carol.expect(":bob!bob@besedka PRIVMSG carol :psst\r\n");
    let own = bob.expect("PRIVMSG carol :psst\r\n");
    assert!(own.lines().last().unwrap().starts_with("@time="), "{own}");
}

#[test]
fn extended_join_away_notify_cap_list_and_nak() {
    let server = server(&[]);
    drop(server.register("dave", "secret4"));
    drop(server.register("erin", "secret5"));
    let mut dave = login_with_caps(&server, "dave", "secret4", "extended-join away-notify");
    dave.send("CAP LIST");
    dave.expect(":besedka CAP dave LIST :sasl away-notify extended-join\r\n");
    // A set with one unknown capability is refused whole.
    dave.send("CAP REQ :echo-message no-such-cap");
    dave.expect(":besedka CAP dave NAK :echo-message no-such-cap\r\n");
    dave.send("CAP LIST");
    dave.expect(":besedka CAP dave LIST :sasl away-notify extended-join\r\n");
    let mut erin = sasl_login(&server, "erin", "secret5");
    dave.expect(":erin!erin@besedka JOIN #lobby erin :erin\r\n");
    erin.send("AWAY :lunch");
    erin.expect(" 306 erin ");
    dave.expect(":erin!erin@besedka AWAY :lunch\r\n");
    erin.send("AWAY");
    dave.expect(":erin!erin@besedka AWAY\r\n");
    // Dropped after login: the next away is not told to dave.
    dave.send("CAP REQ :-away-notify");
    dave.expect(":besedka CAP dave ACK :-away-notify\r\n");
    erin.send("AWAY :again");
    erin.expect(" 306 erin ");
    // erin's next line comes after her AWAY in the hub's order: had dave been told, it
    // would be before this line.
    erin.send("PRIVMSG #lobby :after the away");
    let rest = dave.expect(":erin!erin@besedka PRIVMSG #lobby :after the away\r\n");
    assert!(!rest.contains("AWAY"), "{rest}");
}

#[test]
fn a_quit_reaches_an_irc_reader_once_with_its_message_however_many_channels_they_shared() {
    let server = server(&[]);
    drop(server.register("bob", "secret2"));
    drop(server.register("carol", "secret3"));
    let mut carol = sasl_login(&server, "carol", "secret3");
    let mut bob = sasl_login(&server, "bob", "secret2");
    carol.send("JOIN #tea");
    carol.expect(" 366 carol #tea ");
    bob.send("JOIN #tea");
    bob.expect(" 366 bob #tea ");
    carol.expect(":bob!bob@besedka JOIN #tea\r\n");
    bob.send("QUIT :\u{2}gone\u{2} for tea\u{7}");
    carol.expect(":bob!bob@besedka QUIT :gone for tea\r\n");
    // Both channels' changes are announced in one go, before any later line: had a second
    // QUIT been sent, it would come before this one.
    let (mut dave, _) = server.register("dave", "secret4");
    dave.send("after the quit");
    let rest = carol.expect(":dave!dave@besedka PRIVMSG #lobby :after the quit\r\n");
    assert!(!rest.contains("QUIT"), "one QUIT for two channels: {rest}");
}

#[test]
fn an_operator_coming_in_is_given_at_by_a_mode_after_the_join() {
    let mut server = server(&[]);
    drop(server.register("alice", "secret1"));
    drop(server.register("carol", "secret3"));
    server.ask("op alice", "alice");
    let mut carol = sasl_login(&server, "carol", "secret3");
    let alice = server.login("alice", "secret1");
    carol.expect(":alice!alice@besedka JOIN #lobby\r\n:besedka MODE #lobby +o alice\r\n");
    drop(alice);
    // Not for someone who is not an operator.
    drop(server.register("dave", "secret4"));
    let joined = carol.expect(":dave!dave@besedka JOIN #lobby\r\n");
    carol.send("PING :after");
    let rest = carol.expect("PONG besedka :after\r\n");
    assert!(
        !format!("{joined}{rest}").contains("+o dave"),
        "{joined}{rest}"
    );
}

#[test]
fn a_password_login_over_irc_issues_and_shows_no_token() {
    let server = server(&[]);
    drop(server.register("erin", "secret5")); // over telnet: one token
    let tokens = server.count("tokens");
    let (mut c, answer) = common::irc::sasl(&server, "erin", "secret5");
    assert!(
        answer.contains(" 903 ") || answer.contains(" 900 "),
        "{answer}"
    );
    c.send("CAP END");
    let burst = c.expect(" 366 ");
    assert!(
        !answer.contains("token") && !burst.contains("token"),
        "{answer}{burst}"
    );
    assert_eq!(server.count("tokens"), tokens, "no new token");
    // A bot that wants one asks for it (besedka's /token new, as a raw command).
    c.send("TOKEN new");
    c.expect(":besedka NOTICE erin :Your session token: ");
    assert_eq!(server.count("tokens"), tokens + 1);
}
