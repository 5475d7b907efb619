//! Real IRC clients on `--irc-addr`: weechat (`weechat-headless`) and irssi (under tmux),
//! driven as their users drive them (tests/common/irc_clients.rs), log in with SASL PLAIN and
//! talk with telnet users in the same rooms. Each scenario runs once per client; what the
//! client showed is read from its own per-channel log files.

mod common;

use std::time::{Duration, Instant};

use common::irc_clients::{Irssi, RealClient, Weechat};
use common::{Client, Server};

/// A server with an IRC listener and three accounts: `alice` for the IRC client, and two
/// telnet users, carol in `#lobby` and dave in `#tea`. Before the IRC client comes, carol
/// has said a line in `#lobby` and dave one in `#tea` (both stored), for the history.
struct Stage {
    server: Server,
    carol: Client,
    dave: Client,
}

const LOBBY_HISTORY: &str = "carol wrote this before alice came";
const TEA_HISTORY: &str = "dave brewed this before alice came";

fn stage() -> Stage {
    let server = Server::start(&["--irc-addr", "127.0.0.1:0"]);
    drop(server.register("alice", "secret1"));
    let (mut carol, _) = server.register("carol", "carolpass1");
    let (mut dave, _) = server.register("dave", "davepass1");
    carol.send(LOBBY_HISTORY);
    dave.expect(LOBBY_HISTORY);
    dave.send("/join #tea");
    dave.expect("* You are in #tea.");
    dave.send(TEA_HISTORY);
    wait_stored(&server, 2);
    Stage {
        server,
        carol,
        dave,
    }
}

/// Waits (bounded) until the database holds `n` chat lines: a line is committed shortly
/// after it is said, and the history a JOIN gets is read from the database.
fn wait_stored(server: &Server, n: i64) {
    let start = Instant::now();
    while server.count("messages") < n {
        assert!(
            start.elapsed() < common::WAIT,
            "{n} lines never stored; log:\n{}",
            server.stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn irc(stage: &Stage) -> std::net::SocketAddr {
    stage.server.irc_addr.expect("the IRC listener")
}

/// SASL login, the history of `#lobby` at login, lines both ways there, `/join #tea` with
/// its history, lines both ways there, and `/part #tea`, after which nothing said in `#tea`
/// reaches the client. Holds whether or not a connection stays in `#lobby` while in `#tea`.
fn talks_in_a_channel_sees_history_on_join_and_parts(mut st: Stage, c: &mut dyn RealClient) {
    // Logged in (start waited for the JOIN of #lobby) with #lobby's history shown there.
    c.expect_in("#lobby", LOBBY_HISTORY);
    st.carol.expect("* alice joined");
    // telnet → client, client → telnet, in #lobby.
    st.carol.send("hello alice, from telnet");
    let said = c.said("carol", "hello alice, from telnet");
    c.expect_in("#lobby", &said);
    c.say("#lobby", "hello carol, from irc");
    st.carol.expect("] alice: hello carol, from irc\r\n");

    // A second channel: joined, with its history, and lines both ways there.
    c.command("/join #tea");
    c.expect_in("#tea", "has joined #tea");
    c.expect_in("#tea", TEA_HISTORY);
    st.dave.expect("* alice joined");
    st.dave.send("tea is ready");
    let said = c.said("dave", "tea is ready");
    c.expect_in("#tea", &said);
    c.say("#tea", "thanks dave");
    st.dave.expect("] alice: thanks dave\r\n");

    // Parted: dave sees it, and what dave says next stays out of the client's #tea window,
    // while carol's line after it still reaches #lobby (the client's lines arrive in order).
    c.command("/part #tea");
    c.expect_in("#tea", "has left #tea");
    st.dave.expect("* alice left");
    st.dave.send("anyone still here?");
    // Stored, so the hub has handled it before carol's next line: had it reached the client,
    // it would be in the log before that line.
    wait_stored(&st.server, 7);
    st.carol.send("still in the lobby?");
    let said = c.said("carol", "still in the lobby?");
    c.expect_in("#lobby", &said);
    let tea = c.log("#tea");
    assert!(
        !tea.contains("anyone still here?"),
        "{} got a line of #tea after parting it:\n{tea}",
        c.program()
    );
    // Its own lines are shown once each, whether the client shows them itself or takes the
    // server's echo (echo-message).
    for (channel, text) in [("#lobby", "hello carol, from irc"), ("#tea", "thanks dave")] {
        let log = c.log(channel);
        let own = c.said("alice", text);
        assert_eq!(
            log.matches(&own).count(),
            1,
            "{} shows {own:?} in {channel} other than once:\n{log}",
            c.program()
        );
    }
}

/// In `#lobby` and `#tea` at once: lines said by telnet users in each reach the client's
/// window of that channel, the client's lines in each reach that room's telnet user and not
/// the other's, `#lobby` is never parted by the JOIN, and `/part #tea` leaves `#lobby` be.
fn stays_in_two_channels_at_once(mut st: Stage, c: &mut dyn RealClient) {
    st.carol.expect("* alice joined");
    c.command("/join #tea");
    c.expect_in("#tea", "has joined #tea");
    st.dave.expect("* alice joined");

    // Said by telnet users in each room, each shown in its own window.
    st.carol.send("lobby line for alice");
    st.dave.send("tea line for alice");
    let (lobby_said, tea_said) = (
        c.said("carol", "lobby line for alice"),
        c.said("dave", "tea line for alice"),
    );
    c.expect_in("#lobby", &lobby_said);
    c.expect_in("#tea", &tea_said);

    // Sent by the client to each room, each reaching only that room's telnet user: the
    // server takes the client's lines in order, so a leaked one would come before the next.
    c.say("#lobby", "alice to the lobby");
    c.say("#tea", "alice to the tea room");
    c.say("#lobby", "alice to the lobby again");
    let carol_saw = st.carol.expect("] alice: alice to the lobby again\r\n");
    assert!(
        carol_saw.contains("] alice: alice to the lobby\r\n"),
        "{carol_saw}"
    );
    assert!(!carol_saw.contains("tea room"), "{carol_saw}");
    let dave_saw = st.dave.expect("] alice: alice to the tea room\r\n");
    assert!(!dave_saw.contains("alice to the lobby"), "{dave_saw}");

    // Parting #tea leaves the client in #lobby.
    c.command("/part #tea");
    c.expect_in("#tea", "has left #tea");
    st.dave.expect("* alice left");
    st.carol.send("lobby after the part");
    let said = c.said("carol", "lobby after the part");
    c.expect_in("#lobby", &said);
    let lobby = c.log("#lobby");
    for never in ["has left #lobby", "Cannot send", "tea line for alice"] {
        assert!(
            !lobby.contains(never),
            "{} shows {never:?} in #lobby:\n{lobby}",
            c.program()
        );
    }
    let tea = c.log("#tea");
    for never in ["Cannot send", "lobby line for alice"] {
        assert!(
            !tea.contains(never),
            "{} shows {never:?} in #tea:\n{tea}",
            c.program()
        );
    }
}

#[test]
fn weechat_logs_in_with_sasl_talks_with_telnet_sees_history_on_join_and_parts() {
    let st = stage();
    let Some(mut c) = Weechat::start("weechat", irc(&st), "alice", "secret1") else {
        return;
    };
    talks_in_a_channel_sees_history_on_join_and_parts(st, &mut c);
}

#[test]
fn irssi_logs_in_with_sasl_talks_with_telnet_sees_history_on_join_and_parts() {
    let st = stage();
    let Some(mut c) = Irssi::start("irssi", irc(&st), "alice", "secret1") else {
        return;
    };
    talks_in_a_channel_sees_history_on_join_and_parts(st, &mut c);
}

#[test]
fn weechat_stays_in_two_channels_at_once() {
    let st = stage();
    let Some(mut c) = Weechat::start("weechat", irc(&st), "alice", "secret1") else {
        return;
    };
    stays_in_two_channels_at_once(st, &mut c);
}

#[test]
fn irssi_stays_in_two_channels_at_once() {
    let st = stage();
    let Some(mut c) = Irssi::start("irssi", irc(&st), "alice", "secret1") else {
        return;
    };
    stays_in_two_channels_at_once(st, &mut c);
}
