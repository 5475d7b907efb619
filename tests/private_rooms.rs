//! Invite-only rooms (`/private`, `/invite`, `/uninvite`, `/members`) over the real binary,
//! on both backends: a private room is invisible to a non-member in `/rooms`, `/who *`,
//! `/mentions`, history and IRC's `LIST`/`WHOIS`/`JOIN`, and on the web's WebSocket.

mod common;

use std::net::TcpStream;
use std::time::Instant;

use common::{irc, Server, WAIT};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

/// The server's answer on the web's WebSocket up to a frame containing `want`.
fn ws_until(ws: &mut WebSocket<TcpStream>, want: &str) -> String {
    let start = Instant::now();
    let mut got = String::new();
    while start.elapsed() < WAIT {
        match ws.read() {
            Ok(Message::Text(t)) => {
                got.push_str(&t);
                got.push('\n');
                if t.contains(want) {
                    return got;
                }
            }
            Ok(_) => {}
            Err(e) => panic!("waiting for {want:?}: {e}; got {got}"),
        }
    }
    panic!("no {want:?} in {got}");
}

#[test]
fn an_invite_only_room_is_seen_by_its_members_only_by_every_way_in() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&["--irc-addr", "127.0.0.1:0", "--web-addr", "127.0.0.1:0"]);
        let (mut alice, _) = server.register("alice", "secret1");
        let (mut bob, _) = server.register("bob", "secret2");
        drop(server.register("carol", "secret3"));
        alice.send("/join #den");
        alice.expect("* You are in #den.");
        // Only its maker (or an operator) decides; #lobby is everyone's.
        bob.send("/private on");
        bob.expect("! #lobby is open to everyone");
        alice.send("/private on");
        alice.expect("* alice made #den invite-only: the 1 here are its members");
        alice.send("secret plan: bob must not know");
        alice.expect("] alice: secret plan: bob must not know\r\n");
        // bob: not listed, not joinable, not named, not in his mentions.
        bob.send("/rooms");
        let rooms = bob.expect("#lobby");
        bob.send("/who *");
        let who = bob.expect("* Online (2)");
        let who = format!("{who}{}", bob.expect("\r\n"));
        assert!(
            !rooms.contains("#den") && !who.contains("#den"),
            "{rooms}{who}"
        );
        assert!(who.contains("alice (a private room)"), "{who}");
        bob.send("/mentions");
        bob.expect("* No recent line names you.\r\n");
        // Nor found by /search, once indexed (the index follows every 2 s): alice finds it.
        let until = Instant::now() + WAIT;
        loop {
            alice.send("/search secret plan");
            let got = alice.expect("\r\n");
            if got.contains("Found 1 line") {
                break;
            }
            assert!(Instant::now() < until, "never indexed: {got}");
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        bob.send("/search secret plan");
        bob.expect("* Nothing found.\r\n");
        bob.send("/search plan in:#den");
        bob.expect("there is no room \"#den\"");
        bob.send("/join #den");
        bob.expect("! #den is invite-only: ask one of its members to /invite you.\r\n");
        // Nor over IRC: LIST, WHOIS, JOIN.
        let mut carol = irc::sasl_login(&server, "carol", "secret3");
        carol.send("LIST");
        let list = carol.expect(" 323 ");
        assert!(!list.contains("#den"), "{list}");
        carol.send("WHOIS alice");
        let whois = carol.expect(" 318 ");
        assert!(!whois.contains("#den"), "{whois}");
        carol.send("JOIN #den");
        carol.expect("#den is invite-only");
        carol.expect(":besedka 473 carol #den :Cannot join channel (+i)");
        // Nor on the web page's WebSocket.
        let web = server.web_addr.unwrap();
        let req = format!("ws://{web}/ws").into_client_request().unwrap();
        let stream = TcpStream::connect(web).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let (mut ws, _) = tungstenite::client(req, stream).unwrap();
        ws.send(Message::text("/register dave secret4")).unwrap();
        ws_until(&mut ws, "* In #lobby (");
        ws.send(Message::text("/rooms")).unwrap();
        ws.send(Message::text("/end-of-rooms")).unwrap();
        let listed = ws_until(&mut ws, "Unknown command /end-of-rooms");
        assert!(!listed.contains("#den"), "{listed}");
        // Invited, bob is told, joins, and reads its history.
        alice.send("/invite bob");
        alice.expect("* bob may join #den now.\r\n");
        bob.expect("* alice invited you to #den: /join #den\r\n");
        bob.send("/join #den");
        let came = bob.expect("* In #den (2)");
        assert!(came.contains("secret plan: bob must not know"), "{came}");
        alice.send("/members");
        alice.expect("* Members of #den (2): alice, bob\r\n");
        // Taken off the list while in it: out to #lobby, and his next line is said there.
        alice.send("/uninvite bob");
        alice.expect("* bob is no longer a member of #den.\r\n");
        bob.expect("* alice took you off #den's members; you are in #lobby.\r\n");
        // His commands about "his room" are about #lobby now, not #den.
        bob.send("/members");
        bob.expect("! #lobby is open to everyone");
        bob.send("where am I?");
        carol.expect(":bob!bob@besedka PRIVMSG #lobby :where am I?\r\n");
        bob.expect("] bob: where am I?\r\n"); // its echo
        bob.send("/history");
        bob.expect("* Last ");
        let history = bob.expect("] bob: where am I?\r\n"); // #lobby's history, not #den's
        assert!(!history.contains("secret plan"), "{history}");
        bob.send("/join #den");
        bob.expect("! #den is invite-only");
        // His next login starts in #lobby, not in the room he was last in.
        drop(bob);
        let mut bob = server.login("bob", "secret2");
        bob.send("/who");
        bob.expect("* In #lobby (");
        // Open again: anyone may join.
        alice.send("/private off");
        alice.expect("* alice opened #den to everyone.\r\n");
        bob.send("/join #den");
        bob.expect("* In #den (2)");
        let stored =
            server.texts("SELECT u.name FROM room_members m JOIN users u ON u.id = m.user_id");
        assert_eq!(
            stored,
            ["alice"],
            "the member list is kept while the room is open"
        );
    });
}
