//! The IRC way in (`--irc-addr`), driven by a small raw IRC client (a TCP stream speaking
//! IRC lines) next to telnet clients on the same server.

mod common;

use common::irc::{irc, plain, sasl, sasl_login, server};
use common::Server;

#[test]
fn sasl_plain_logs_in_with_the_burst_the_isupport_limits_and_the_channel() {
    let server = server(&["--max-line", "300"]);
    drop(server.register("alice", "secret1"));
    let (mut c, answer) = sasl(&server, "alice", "secret1");
    assert!(
        answer.contains(":besedka 900 alice alice!alice@besedka alice :You are now logged in"),
        "{answer}"
    );
    c.expect("successful\r\n");
    c.send("CAP END");
    let burst = c.expect(" 366 ");
    for want in [
        ":besedka 001 alice ",
        ":besedka 005 alice CHANTYPES=# CASEMAPPING=rfc8265 NICKLEN=32 CHANNELLEN=33 TOPICLEN=200 LINELEN=300 ",
        ":besedka 376 alice ",
        ":alice!alice@besedka JOIN #lobby\r\n",
        ":besedka 331 alice #lobby :No topic is set\r\n",
        ":besedka 353 alice = #lobby :alice\r\n",
    ] {
        assert!(burst.contains(want), "{want:?} not in {burst:?}");
    }
    // Before the burst, no line protocol text: every line is an IRC message.
    for line in burst.lines() {
        assert!(
            line.starts_with(':') || line.starts_with("AUTHENTICATE"),
            "{line:?}"
        );
    }
}

#[test]
fn pass_logs_in_as_name_colon_password_or_with_the_nick_as_the_name() {
    let server = server(&[]);
    drop(server.register("alice", "secret1"));
    let mut c = irc(&server);
    c.send("PASS alice:secret1");
    c.send("NICK whatever");
    c.send("USER u 0 * :u");
    c.expect(":besedka 001 alice ");
    c.expect(":alice!alice@besedka JOIN #lobby\r\n");

    let mut c = irc(&server);
    c.send("PASS secret1");
    c.send("NICK alice");
    c.send("USER u 0 * :u");
    c.expect(":besedka 001 alice ");
}

#[test]
fn a_wrong_password_is_904_over_sasl_and_464_over_pass() {
    let server = server(&[]);
    drop(server.register("alice", "secret1"));
    let (mut c, answer) = sasl(&server, "alice", "nope-nope");
    assert!(answer.contains(":besedka 904 alice :SASL"), "{answer}");
    // Registration ends unauthenticated: told how to log in, and IDENTIFY works.
    c.send("CAP END");
    c.expect("NOTICE * :You are not logged in.");
    c.send("PRIVMSG NickServ :IDENTIFY secret1");
    c.expect(":besedka 001 alice ");

    let mut c = irc(&server);
    c.send("PASS alice:wrong-one");
    c.send("NICK alice");
    c.send("USER u 0 * :u");
    c.expect(":besedka 464 * :Password incorrect\r\n");
    c.expect("ERROR :Password incorrect\r\n");
    c.expect_closed();
}

#[test]
fn a_client_not_logged_in_is_told_how_and_cut_at_the_login_deadline() {
    let server = server(&["--login-timeout", "2"]);
    let mut c = irc(&server);
    c.send("NICK newbie");
    c.send("USER u 0 * :u");
    c.expect(":besedka NOTICE * :You are not logged in.");
    c.expect(":besedka NOTICE * :New here? /quote PRIVMSG NickServ :REGISTER PASSWORD");
    c.send("JOIN #lobby");
    c.expect(":besedka 451 newbie :You have not logged in\r\n");
    c.send("PRIVMSG #lobby :hello?");
    let between = c.expect(":besedka 451 newbie :You have not logged in\r\n");
    let rest = c.expect_closed();
    // Told how once; a 451 does not repeat it.
    assert!(!between.contains("You are not logged in."), "{between}");
    assert!(!rest.contains("You are not logged in."), "{rest}");
    assert!(rest.contains("NOTICE * :! Login timed out."), "{rest}");
    assert!(rest.contains("ERROR :Login timed out."), "{rest}");
}

#[test]
fn nickserv_register_makes_an_account_that_telnet_then_logs_in_with() {
    let server = server(&[]);
    let mut c = irc(&server);
    c.send("NICK carol");
    c.send("USER u 0 * :u");
    c.expect("You are not logged in.");
    c.send("PRIVMSG NickServ :REGISTER carolpass1");
    c.expect(":besedka 001 carol ");
    drop(server.login("carol", "carolpass1"));
}

#[test]
fn telnet_and_irc_users_talk_both_ways_in_lobby_and_in_private() {
    let server = server(&[]);
    let (mut alice, _) = server.register("alice", "secret1");
    drop(server.register("bob", "secret2"));
    let mut bob = sasl_login(&server, "bob", "secret2");
    alice.expect("* bob joined\r\n");
    // IRC → telnet.
    bob.send("PRIVMSG #lobby :hello from irc");
    alice.expect("] bob: hello from irc\r\n");
    // telnet → IRC.
    alice.send("hello from telnet");
    bob.expect(":alice!alice@besedka PRIVMSG #lobby :hello from telnet\r\n");
    // /me both ways, as CTCP ACTION.
    alice.send("/me waves");
    bob.expect(":alice!alice@besedka PRIVMSG #lobby :\u{1}ACTION waves\u{1}\r\n");
    bob.send("PRIVMSG #lobby :\u{1}ACTION bows\u{1}");
    alice.expect("] * bob bows\r\n");
    // Private messages both ways.
    alice.send("/msg bob psst");
    bob.expect(":alice!alice@besedka PRIVMSG bob :psst\r\n");
    bob.send("PRIVMSG alice :secret back");
    alice.expect("] bob -> alice: secret back\r\n");
    // Server notices reach IRC as NOTICEs.
    let mut console = server;
    console.command("say maintenance soon");
    bob.expect(":besedka NOTICE bob :[server] maintenance soon\r\n");
    // Nothing IRC sent came back to it: its own lines are not echoed.
    bob.send("PING :mark");
    let between = bob.expect("PONG besedka :mark\r\n");
    assert!(!between.contains("hello from irc"), "{between}");
    assert!(!between.contains("secret back"), "{between}");
}

#[test]
fn an_irc_client_is_in_several_channels_at_once_and_each_hears_its_own_lines() {
    let server = server(&[]);
    let (mut alice, _) = server.register("alice", "secret1");
    alice.send("/join #tea");
    alice.expect("* You are in #tea.");
    let (mut carol, _) = server.register("carol", "secret3");
    drop(server.register("bob", "secret2"));
    let mut bob = sasl_login(&server, "bob", "secret2");
    carol.expect("* bob joined\r\n");
    // Two channels in one JOIN; #lobby is kept: no PART.
    bob.send("JOIN #tea,#coffee");
    bob.expect(":bob!bob@besedka JOIN #tea\r\n");
    let names = bob.expect(":besedka 366 bob #tea :End of /NAMES list\r\n");
    assert!(names.contains(" 353 bob = #tea :alice bob\r\n"), "{names}");
    let coffee = bob.expect(":besedka 366 bob #coffee :End of /NAMES list\r\n");
    assert!(
        coffee.contains(":bob!bob@besedka JOIN #coffee\r\n"),
        "{coffee}"
    );
    assert!(!coffee.contains("PART"), "{coffee}");
    alice.expect("* bob joined #tea\r\n");
    // Each channel's lines go to that room alone, both ways.
    bob.send("PRIVMSG #tea :tea time");
    bob.send("PRIVMSG #lobby :lobby time");
    alice.expect("] bob: tea time\r\n");
    carol.expect("] bob: lobby time\r\n");
    alice.send("in tea");
    bob.expect(":alice!alice@besedka PRIVMSG #tea :in tea\r\n");
    carol.send("in lobby");
    bob.expect(":carol!carol@besedka PRIVMSG #lobby :in lobby\r\n");
    // Neither telnet user heard the other room's line.
    alice.send("/who");
    let who = alice.expect("* In #tea (2): alice, bob\r\n");
    assert!(!who.contains("lobby time"), "{who}");
    carol.send("/who");
    let who = carol.expect("* In #lobby (2): bob, carol\r\n");
    assert!(!who.contains("tea time"), "{who}");
    // A channel it is not in: refused, not sent.
    bob.send("PRIVMSG #elsewhere :anyone?");
    bob.expect(":besedka 404 bob #elsewhere :Cannot send to channel");
    // PART takes one channel; the others stay.
    bob.send("PART #tea");
    bob.expect(":bob!bob@besedka PART #tea :left\r\n");
    alice.expect("* bob left\r\n");
    bob.send("PRIVMSG #tea :still here?");
    bob.expect(":besedka 404 bob #tea :Cannot send to channel");
    bob.send("PRIVMSG #coffee :coffee is fine");
    bob.send("PRIVMSG #lobby :and the lobby");
    carol.expect("] bob: and the lobby\r\n");
    // A bad name, and more channels than CHANLIMIT.
    bob.send("JOIN #bad!name");
    bob.expect(":besedka 479 bob #bad!name :Illegal channel name");
    // (The rooms are made beforehand: one user may make five an hour.)
    let sql = server.sql();
    for i in 0..25 {
        sql.execute(
            "INSERT INTO rooms (name, name_key, created_at) VALUES (?1, ?1, '2026-01-01T00:00:00Z')",
            [format!("#c{i}")],
        )
        .unwrap();
    }
    let many: Vec<String> = (0..25).map(|i| format!("#c{i}")).collect();
    bob.send(&format!("JOIN {}", many.join(",")));
    bob.expect(":besedka 405 bob #c18 :You have joined too many channels (at most 20)\r\n");
}

#[test]
fn ping_and_pong_go_both_ways_and_quit_is_seen_by_telnet() {
    let server = server(&["--irc-ping", "1"]);
    let (mut alice, _) = server.register("alice", "secret1");
    drop(server.register("bob", "secret2"));
    let mut bob = sasl_login(&server, "bob", "secret2");
    bob.send("PING :12345");
    bob.expect(":besedka PONG besedka :12345\r\n");
    // Silent for a second: the server pings; an answer keeps the client on.
    bob.expect("PING :besedka\r\n");
    bob.send("PONG :besedka");
    bob.send("PING :still-here");
    bob.expect("PONG besedka :still-here\r\n");
    alice.expect("* bob joined\r\n");
    bob.send("QUIT :bye");
    bob.expect("ERROR :");
    bob.expect_closed();
    alice.expect("* bob left\r\n");
}

#[test]
fn a_silent_client_that_never_answers_a_ping_is_cut() {
    let server = server(&["--irc-ping", "1"]);
    drop(server.register("bob", "secret2"));
    let mut bob = sasl_login(&server, "bob", "secret2");
    bob.expect("PING :besedka\r\n");
    let rest = bob.expect_closed();
    assert!(rest.contains("ERROR :Ping timeout"), "{rest}");
}

#[test]
fn an_over_long_line_is_refused_with_417_and_the_client_stays() {
    let server = server(&["--max-line", "100"]);
    let (mut alice, _) = server.register("alice", "secret1");
    drop(server.register("bob", "secret2"));
    let mut bob = sasl_login(&server, "bob", "secret2");
    bob.send(&format!("PRIVMSG #lobby :{}", "x".repeat(101)));
    bob.expect(":besedka 417 bob :Input line was too long (at most 100 bytes of text)\r\n");
    // Exactly --max-line bytes of text pass, as a telnet user's 100-byte line does: the
    // limit is the text's, not the IRC line's.
    bob.send(&format!("PRIVMSG #lobby :{}", "y".repeat(100)));
    bob.send("PRIVMSG #lobby :short one");
    let seen = alice.expect("] bob: short one\r\n");
    assert!(
        seen.contains(&format!("] bob: {}\r\n", "y".repeat(100))),
        "{seen}"
    );
    assert!(
        !seen.contains("xxxx"),
        "the over-long line reached nobody: {seen}"
    );
    assert_eq!(
        server.texts("SELECT body FROM messages ORDER BY id"),
        ["y".repeat(100), "short one".to_string()]
    );
}

#[test]
fn control_and_formatting_characters_from_irc_reach_telnet_cleaned() {
    let server = server(&[]);
    let (mut alice, _) = server.register("alice", "secret1");
    drop(server.register("bob", "secret2"));
    let mut bob = sasl_login(&server, "bob", "secret2");
    bob.send("PRIVMSG #lobby :a\u{1b}[2Jb\u{2}bold\u{2} \u{3}04,01red\u{3} \u{7}bell\u{202e}end");
    let line = alice.expect("end\r\n");
    assert!(line.ends_with("] bob: abbold red bellend\r\n"), "{line:?}");
    // And the topic, set from IRC, is cleaned too.
    bob.send("TOPIC #lobby :\u{1b}]0;pwned\u{7}\u{2}tea\u{2} time");
    alice.expect("* bob set the topic: tea time\r\n");
    bob.expect(":bob!bob@besedka TOPIC #lobby :tea time\r\n");
}

#[test]
fn names_who_away_motd_and_unknown_commands_answer_in_numerics() {
    let mut server = server(&[]);
    drop(server.register("alice", "secret1"));
    drop(server.register("bob", "secret2"));
    server.ask("op alice", "alice");
    let (_alice, _) = (server.login("alice", "secret1"), ());
    let mut bob = sasl_login(&server, "bob", "secret2");
    bob.send("NAMES #lobby");
    bob.expect(":besedka 353 bob = #lobby :@alice bob\r\n");
    bob.send("AWAY :lunch");
    bob.expect(":besedka 306 bob :You have been marked as being away\r\n");
    bob.send("WHO #lobby");
    bob.expect(":besedka 352 bob #lobby alice besedka besedka alice H@ :0 alice\r\n");
    bob.expect(":besedka 352 bob #lobby bob besedka besedka bob G :0 bob\r\n");
    bob.expect(":besedka 315 bob #lobby :End of /WHO list\r\n");
    bob.send("AWAY");
    bob.expect(":besedka 305 bob ");
    bob.send("MOTD");
    bob.expect(":besedka 376 bob :End of /MOTD command\r\n");
    bob.send("FROBNICATE now");
    bob.expect(":besedka 421 bob FROBNICATE :Unknown command\r\n");
}

#[test]
fn whois_tells_the_room_the_away_text_and_the_operator_and_401_for_the_offline() {
    let mut server = server(&[]);
    drop(server.register("alice", "secret1"));
    drop(server.register("bob", "secret2"));
    drop(server.register("carol", "secret3"));
    server.ask("op alice", "alice");
    let mut alice = server.login("alice", "secret1");
    alice.send("/join #tea");
    alice.expect("* You are in #tea.");
    alice.send("/away lunch");
    alice.expect("lunch");
    let mut bob = sasl_login(&server, "bob", "secret2");
    bob.send("WHOIS ALICE");
    let answer = bob.expect(":besedka 318 bob alice :End of /WHOIS list\r\n");
    for want in [
        ":besedka 311 bob alice alice besedka * :alice\r\n",
        ":besedka 319 bob alice :@#tea\r\n",
        ":besedka 312 bob alice besedka :",
        ":besedka 301 bob alice :lunch\r\n",
        ":besedka 313 bob alice :is a server operator\r\n",
    ] {
        assert!(answer.contains(want), "{want:?} not in {answer:?}");
    }
    // Someone online, not away, not an operator: no 301, no 313 ("bob" asks of himself).
    bob.send("WHOIS bob");
    let answer = bob.expect(":besedka 318 bob bob :End of /WHOIS list\r\n");
    assert!(
        answer.contains(":besedka 319 bob bob :#lobby\r\n"),
        "{answer}"
    );
    assert!(
        !answer.contains(" 301 ") && !answer.contains(" 313 "),
        "{answer}"
    );
    // carol has an account but is offline; nobody is called zed: both are 401.
    for asked in ["carol", "zed"] {
        bob.send(&format!("WHOIS {asked}"));
        bob.expect(&format!(":besedka 401 bob {asked} :No such nick\r\n"));
        bob.expect(&format!(":besedka 318 bob {asked} :End of /WHOIS list\r\n"));
    }
    bob.send("WHOIS");
    bob.expect(":besedka 431 bob :No nickname given\r\n");
    // Five at most in one WHOIS; the sixth is told, not dropped.
    bob.send("WHOIS a1,a2,a3,a4,a5,a6,a7");
    let got = bob.expect(":besedka 407 bob a6 :Too many targets (at most 5 a WHOIS)\r\n");
    assert!(got.contains(" 318 bob a5 "), "five answered first: {got}");
}

#[test]
fn list_gives_the_rooms_busiest_first_with_their_people_and_topics() {
    let server = server(&[]);
    drop(server.register("alice", "secret1"));
    drop(server.register("bob", "secret2"));
    drop(server.register("carol", "secret3"));
    let mut alice = server.login("alice", "secret1");
    alice.send("/join #tea");
    alice.expect("* You are in #tea.");
    alice.send("/topic green or black");
    alice.expect("green or black");
    let mut carol = server.login("carol", "secret3");
    carol.send("/join #tea");
    carol.expect("* You are in #tea.");
    let mut bob = sasl_login(&server, "bob", "secret2");
    bob.send("LIST");
    let answer = bob.expect(":besedka 323 bob :End of /LIST\r\n");
    let tea = answer
        .find(":besedka 322 bob #tea 2 :green or black\r\n")
        .unwrap_or_else(|| panic!("#tea with 2 people and its topic in {answer:?}"));
    let lobby = answer
        .find(":besedka 322 bob #lobby 1 :\r\n")
        .unwrap_or_else(|| panic!("#lobby with bob in {answer:?}"));
    assert!(tea < lobby, "busiest first: {answer}");
    assert!(
        answer.contains(":besedka 321 bob Channel :Users  Name\r\n"),
        "{answer}"
    );
}

#[test]
fn irc_inside_tls_logs_in_with_sasl_and_talks_with_a_telnet_user() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::tls::gen_cert(dir.path());
    let (cert_s, key_s) = (cert.to_str().unwrap(), key.to_str().unwrap());
    // No --tls-addr: --ircs-addr alone takes the certificate.
    let server = Server::start(&[
        "--ircs-addr",
        "127.0.0.1:0",
        "--tls-cert",
        cert_s,
        "--tls-key",
        key_s,
    ]);
    assert!(server.tls_addr.is_none() && server.irc_addr.is_none());
    let ircs = server
        .ircs_addr
        .expect("the ircs listener in the startup line");
    let (mut alice, _) = server.register("alice", "secret1");
    drop(server.register("bob", "secret2"));
    let mut bob = common::tls::TlsClient::connect(ircs, &cert);
    bob.send("CAP LS 302");
    bob.send("NICK bob");
    bob.send("USER bob 0 * :bob");
    bob.expect(":besedka CAP * LS :sasl=PLAIN server-time ");
    bob.send("CAP REQ :sasl");
    bob.expect("CAP bob ACK :sasl\r\n");
    bob.send("AUTHENTICATE PLAIN");
    bob.expect("AUTHENTICATE +\r\n");
    bob.send(&format!("AUTHENTICATE {}", plain("bob", "secret2")));
    bob.expect(":besedka 903 bob :SASL authentication successful\r\n");
    bob.send("CAP END");
    bob.expect(":besedka 001 bob :Welcome to besedka, bob\r\n");
    bob.expect(":besedka 366 bob #lobby :End of /NAMES list\r\n");
    alice.expect("* bob joined\r\n");
    bob.send("PRIVMSG #lobby :hello over ircs");
    alice.expect("] bob: hello over ircs\r\n");
    alice.send("hello back");
    bob.expect(":alice!alice@besedka PRIVMSG #lobby :hello back\r\n");
    // The console tells it apart from plain IRC.
    let mut console = server;
    console.ask("who", "(ircs, #lobby)");
}

#[test]
fn ircs_needs_the_tls_certificate_and_key() {
    let out = std::process::Command::new(common::bin())
        .args(["serve", "--ircs-addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--tls-cert") && err.contains("--tls-key"),
        "{err}"
    );
}
