//! Unread markers over the real binary, on both backends: `/unread`, the login summary
//! after a logout, the marker line when coming back into a room, shared by a user's
//! sessions.

mod common;

use common::Server;

#[test]
fn what_came_since_you_were_last_in_a_room_is_counted_and_marked() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&["--history", "10"]);
        let (mut alice, _) = server.register("alice", "secret1");
        let (mut bob, _) = server.register("bob", "secret2");
        for who in [&mut alice, &mut bob] {
            who.send("/join #rust");
            who.expect("* You are in #rust.");
        }
        bob.send("before alice left");
        alice.expect("bob: before alice left\r\n");
        alice.send("/join #lobby");
        alice.expect("* In #lobby (");
        bob.expect("* alice left for #lobby");
        for i in 0..37 {
            bob.send(&format!("rust line {i}"));
        }
        bob.expect("bob: rust line 36\r\n"); // its echo: all 37 are stored
        alice.send("/unread");
        alice.expect("* New since you were last there:\r\n*   #rust: 37 new\r\n");
        // Logged out: #lobby is marked too; two lines there meanwhile.
        drop(alice);
        bob.send("/join #lobby");
        bob.expect("* In #lobby (1): bob");
        bob.send("lobby one");
        bob.send("lobby two");
        bob.expect("bob: lobby two\r\n");
        let mut alice = server.connect();
        alice.expect("Name: ");
        alice.send("/login alice secret1");
        let login = alice.expect("* In #lobby (2)");
        assert!(
            login.contains("* Since your last visit: 37 new lines in #rust, 2 in #lobby.\r\n"),
            "{login}"
        );
        // A second session of hers: another session is online, so no summary (it has been
        // reading); but the marker is hers, shared: coming back into #rust shows the 37 new
        // lines (more than --history 10), after a line saying so.
        let mut second = server.connect();
        second.expect("Name: ");
        second.send("/login alice secret1");
        let login = second.expect("* In #lobby (2)");
        assert!(!login.contains("Since your last visit"), "{login}");
        second.send("/join #rust");
        let came = second.expect("* In #rust (");
        let marker = came
            .find("* --- 37 new lines since you were last here ---\r\n")
            .unwrap_or_else(|| panic!("no marker in {came}"));
        let before = came.find("bob: before alice left").unwrap();
        let first = came.find("bob: rust line 0\r\n").unwrap();
        let last = came.find("bob: rust line 36\r\n").unwrap();
        assert!(before < marker && marker < first && first < last, "{came}");
        // Back in #rust, nothing is unread there; #lobby has nothing new either.
        second.send("/unread");
        second.expect("* Nothing new in your other rooms.\r\n");
    });
}

#[test]
fn past_two_hundred_new_lines_the_marker_says_how_many_and_the_newest_follow() {
    let server = Server::start(&["--history", "5", "--max-rate", "100000"]);
    let (mut alice, _) = server.register("alice", "secret1");
    alice.send("/join #big");
    alice.expect("* In #big (");
    alice.send("/join #lobby");
    alice.expect("* In #lobby (");
    let (mut bob, _) = server.register("bob", "secret2");
    bob.echo_off();
    bob.send("/join #big");
    bob.expect("* In #big (");
    for i in 0..1200 {
        bob.send(&format!("big line {i}"));
    }
    bob.send("/echo on");
    bob.send("last");
    bob.expect("] bob: last\r\n"); // all stored before it
    alice.send("/unread");
    alice.expect("*   #big: 1000+ new\r\n");
    alice.send("/join #big");
    let came = alice.expect("* In #big (");
    let marker = came
        .find("* --- 1000+ new lines since you were last here; the last 200: ---\r\n")
        .unwrap_or_else(|| panic!("{came}"));
    // The newest 200 of them: lines 1001..=1199 and "last".
    assert!(came[marker..].contains("bob: big line 1001\r\n"), "{came}");
    assert!(came[marker..].contains("bob: last\r\n"), "{came}");
    assert!(
        !came.contains("big line 1000\r\n"),
        "200 shown, not 205: {came}"
    );
}
