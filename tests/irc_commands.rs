//! IRC commands past the basics, over the real binary with a raw IRC client: `KICK` and
//! `MODE +b` for operators, `draft/account-registration`'s `REGISTER`, `WHOIS`'s idle
//! time, besedka's own commands from IRC, and numerics where IRC has one.
//! (`draft/chathistory` is tests/irc_chathistory.rs.)

mod common;

use std::time::{Duration, Instant};

use common::irc::{sasl, sasl_login, server};
use common::{Client, Server};

#[test]
fn operators_kick_and_ban_from_irc_and_everyone_else_gets_the_numerics() {
    let mut server = server(&[]);
    for (name, password) in [
        ("alice", "secret1"),
        ("bob", "secret2"),
        ("dave", "secret4"),
    ] {
        drop(server.register(name, password));
    }
    let (mut carol, _) = server.register("carol", "secret3");
    server.ask("op alice", "alice is now an operator.");
    let mut alice = sasl_login(&server, "alice", "secret1");
    let mut bob = sasl_login(&server, "bob", "secret2");
    // Not an operator: 482 for a kick and a ban; the ban list is just its end.
    bob.send("KICK #lobby carol :bye");
    bob.expect(":besedka 482 bob #lobby :You're not channel operator");
    bob.send("MODE #lobby +b carol");
    bob.expect(":besedka 482 bob #lobby :");
    bob.send("MODE #lobby +b");
    let got = bob.expect(":besedka 368 bob #lobby :End of channel ban list\r\n");
    assert!(!got.contains(" 367 "), "{got}");
    // An operator's mistakes, each with its numeric.
    carol.send("/join #tea");
    carol.expect("* You are in #tea.");
    for (line, reply) in [
        (
            "KICK #lobby nobody",
            ":besedka 401 alice nobody :No such nick\r\n",
        ),
        (
            "KICK #lobby dave",
            ":besedka 401 alice dave :No such nick\r\n",
        ),
        (
            "KICK #lobby carol",
            ":besedka 441 alice carol #lobby :They aren't on that channel\r\n",
        ),
        (
            "KICK #tea carol",
            ":besedka 442 alice #tea :You're not on that channel\r\n",
        ),
        (
            "KICK #lobby",
            ":besedka 461 alice KICK :Not enough parameters\r\n",
        ),
        (
            "MODE #lobby +b nobody",
            ":besedka 401 alice nobody :No such nick\r\n",
        ),
        (
            "MODE #lobby +b *!*@10.0.0.1",
            ":besedka NOTICE alice :! Bans here are by account name",
        ),
    ] {
        alice.send(line);
        alice.expect(reply);
    }
    // KICK is besedka's /kick: server-wide, the reason told, everyone told.
    alice.send("KICK #lobby bob :flooding");
    bob.expect(":besedka NOTICE bob :You were disconnected by alice: flooding.\r\n");
    bob.expect("ERROR :");
    bob.expect_closed();
    alice.expect(":besedka NOTICE alice :alice kicked bob: flooding\r\n");
    carol.expect("* alice kicked bob: flooding\r\n");
    // MODE +b is /ban (forever), listed by MODE +b, lifted by MODE -b.
    alice.send("MODE #lobby +b bob!*@*");
    alice.expect(":besedka NOTICE alice :alice banned bob\r\n");
    let (mut again, answer) = sasl(&server, "bob", "secret2");
    assert!(answer.contains("NOTICE * :! You are banned"), "{answer}");
    again.expect_closed();
    alice.send("MODE #lobby b");
    alice.expect(":besedka 367 alice #lobby bob!*@* alice ");
    alice.expect(":besedka 368 alice #lobby :End of channel ban list\r\n");
    // With a ban in force, someone who is not an operator still gets the list's end only.
    let mut dave = sasl_login(&server, "dave", "secret4");
    dave.send("MODE #lobby b");
    let got = dave.expect(":besedka 368 dave #lobby :End of channel ban list\r\n");
    assert!(
        !got.contains(" 367 "),
        "the ban list is the operators': {got}"
    );
    alice.send("MODE #lobby -b bob");
    alice.expect(":besedka NOTICE alice :alice unbanned bob\r\n");
    alice.send("MODE #lobby +b");
    let got = alice.expect(":besedka 368 alice #lobby :End of channel ban list\r\n");
    assert!(!got.contains(" 367 "), "{got}");
    drop(sasl_login(&server, "bob", "secret2"));
}

#[test]
fn register_makes_an_account_before_or_after_registration_ends_with_telnets_limits() {
    let server = Server::start_strict(&["--irc-addr", "127.0.0.1:0", "--register-rate", "2"]);
    drop(server.register("alice", "secret1")); // the address's first new account
                                               // Before CAP END (before-connect): the account is made and the client logged in.
    let mut c = common::irc::irc(&server);
    c.send("CAP LS 302");
    c.expect("draft/account-registration=before-connect,custom-account-name");
    c.send("REGISTER * * secret9");
    c.expect(":besedka FAIL REGISTER NEED_NICK * :");
    c.send("NICK newbie");
    c.send("USER newbie 0 * :newbie");
    c.send("CAP REQ :draft/account-registration");
    for (line, reply) in [
        (
            "REGISTER alice * secret9",
            "FAIL REGISTER ACCOUNT_EXISTS alice :The name alice is taken.",
        ),
        (
            "REGISTER ALICE * secret9",
            "FAIL REGISTER ACCOUNT_EXISTS ALICE :The name ALICE is taken.",
        ),
        (
            "REGISTER no:way * secret9",
            "FAIL REGISTER BAD_ACCOUNT_NAME no:way :Invalid name:",
        ),
        (
            "REGISTER * * abc",
            "FAIL REGISTER WEAK_PASSWORD newbie :Password too short",
        ),
        (
            "REGISTER *",
            ":besedka 461 newbie REGISTER :Not enough parameters",
        ),
        (
            "VERIFY newbie 1234",
            "FAIL VERIFY INVALID_CODE newbie :No verification is needed here",
        ),
    ] {
        c.send(line);
        c.expect(reply);
    }
    c.send("REGISTER * newbie@example.org secret9");
    c.expect(":besedka REGISTER SUCCESS newbie :Account created; you are logged in\r\n");
    c.expect(
        ":besedka 900 newbie newbie!newbie@besedka newbie :You are now logged in as newbie\r\n",
    );
    c.send("REGISTER * * secret9");
    c.expect(":besedka FAIL REGISTER ALREADY_AUTHENTICATED newbie :");
    c.send("CAP END");
    c.expect(":besedka 001 newbie :Welcome to besedka, newbie\r\n");
    c.send("REGISTER other * secret9");
    c.expect(":besedka FAIL REGISTER ALREADY_AUTHENTICATED newbie :You are logged in as newbie already\r\n");
    assert_eq!(
        server.texts("SELECT name FROM users ORDER BY id"),
        ["alice", "newbie"]
    );
    // The address has made its two accounts this hour: IRC and telnet are refused alike.
    let mut late = common::irc::irc(&server);
    late.send("NICK late");
    late.send("USER late 0 * :late");
    late.expect("NOTICE * :You are not logged in.");
    late.send("REGISTER * * secret9");
    late.expect("FAIL REGISTER TEMPORARILY_UNAVAILABLE late :Too many new accounts from your address. Try again in ");
    let mut t = server.connect();
    t.expect("Name: ");
    t.send("/register later secret9");
    t.expect("! Too many new accounts from your address.");
}

#[test]
fn register_after_registration_ends_logs_in_and_no_register_closes_it() {
    let server = server(&[]);
    let mut c = common::irc::irc(&server);
    c.send("NICK fresh");
    c.send("USER fresh 0 * :fresh");
    c.expect("NOTICE * :You are not logged in.");
    c.send("REGISTER fresh * secret9");
    c.expect(":besedka REGISTER SUCCESS fresh ");
    c.expect(":besedka 001 fresh :Welcome to besedka, fresh\r\n");
    let closed = common::irc::server(&["--no-register"]);
    let mut c = common::irc::irc(&closed);
    c.send("NICK fresh");
    c.send("REGISTER * * secret9");
    c.expect("FAIL REGISTER TEMPORARILY_UNAVAILABLE fresh :Registration is closed on this server.");
}

/// `WHOIS nick`'s 317: (idle seconds, signon time).
fn whois_idle(c: &mut Client, nick: &str) -> (u64, u64) {
    c.send(&format!("WHOIS {nick}"));
    let got = c.expect(" 318 ");
    c.expect("\r\n");
    let line = got
        .lines()
        .find(|l| l.contains(" 317 "))
        .unwrap_or_else(|| panic!("no 317 in {got}"));
    let words: Vec<&str> = line.split(' ').collect();
    assert_eq!(&words[1..4], ["317", "bob", nick], "{line}");
    assert!(line.ends_with(" :seconds idle, signon time"), "{line}");
    (words[4].parse().unwrap(), words[5].parse().unwrap())
}

#[test]
fn whois_tells_how_long_since_a_user_last_spoke_and_when_they_logged_in() {
    let server = server(&[]);
    drop(server.register("bob", "secret2"));
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (mut alice, _) = server.register("alice", "secret1");
    let mut bob = common::irc::sasl_login(&server, "bob", "secret2");
    std::thread::sleep(Duration::from_millis(2100));
    let (idle, signon) = whois_idle(&mut bob, "alice");
    assert!(idle >= 2, "silent since login, 2 s ago: {idle}");
    assert!(
        signon >= before && signon <= before + 60,
        "{signon} vs {before}"
    );
    let spoke = Instant::now(); // the server staged the line after this
    alice.send("hello");
    bob.expect("PRIVMSG #lobby :hello\r\n");
    let (idle, again) = whois_idle(&mut bob, "alice");
    assert!(
        idle <= spoke.elapsed().as_secs() + 1,
        "she just spoke: {idle}"
    );
    assert_eq!(again, signon, "the signon time stays");
}

#[test]
fn a_muted_line_is_404_and_a_message_to_someone_away_is_301() {
    let mut server = server(&[]);
    let (mut alice, _) = server.register("alice", "secret1");
    drop(server.register("bob", "secret2"));
    let mut bob = sasl_login(&server, "bob", "secret2");
    alice.send("/away lunch");
    alice.expect("* You are away: lunch.");
    bob.send("PRIVMSG alice :hi");
    bob.expect(":besedka 301 bob alice :lunch\r\n");
    alice.expect("bob -> alice: hi");
    server.ask("mute bob 1h", "Muted bob for 1h.");
    for (line, target) in [
        ("PRIVMSG #lobby :hello?", "#lobby"),
        ("PRIVMSG alice :psst", "alice"),
    ] {
        bob.send(line);
        let got = bob.expect(&format!(
            ":besedka 404 bob {target} :Cannot send to channel (you are muted)\r\n"
        ));
        // The notice says why and until when.
        assert!(
            got.contains(":besedka NOTICE bob :! You are muted until "),
            "{got}"
        );
    }
}

#[test]
fn besedkas_own_commands_run_from_irc_and_answer_in_notices() {
    let server = server(&[]);
    let (mut alice, _) = server.register("alice", "secret1");
    drop(server.register("bob", "secret2"));
    alice.send("the teapot is warm, bob");
    alice.send("/join #tea");
    alice.expect("* You are in #tea.");
    let mut bob = sasl_login(&server, "bob", "secret2");
    bob.send("ROOMS");
    bob.expect(":besedka NOTICE bob :Rooms (2), busiest first:\r\n");
    bob.expect(":besedka NOTICE bob :  #tea (1)\r\n");
    bob.send("HISTORY :5");
    bob.expect("NOTICE bob :");
    bob.expect("alice: the teapot is warm, bob\r\n");
    bob.send("MENTIONS");
    bob.expect(":besedka NOTICE bob :The last 1 line(s) that named you:\r\n");
    bob.expect("alice: the teapot is warm, bob\r\n");
    // The search index is filled in batches, every 2 s: ask until the line is in it.
    let start = Instant::now();
    loop {
        bob.send("SEARCH teapot");
        let got = bob.expect("NOTICE bob :");
        let got = got + &bob.expect("\r\n");
        if got.contains("Found 1 line(s)") {
            bob.expect("alice: the teapot is warm, bob\r\n");
            break;
        }
        assert!(got.contains("Nothing found."), "{got}");
        assert!(start.elapsed() < Duration::from_secs(10), "never indexed");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The central checks hold: an operator's command is refused; not one of besedka's: 421.
    bob.send("BAN alice");
    bob.expect(":besedka NOTICE bob :! Only operators can do that.\r\n");
    bob.send("FROBNICATE now");
    bob.expect(":besedka 421 bob FROBNICATE :Unknown command\r\n");
}
