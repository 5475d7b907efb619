//! Names that cannot impersonate, and text that cannot lie about its direction or drive the
//! terminal of whoever reads an error.

mod common;
use std::time::Duration;

use common::Server;

#[test]
fn look_alike_names_are_refused() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        drop(server.register("alice", "secret1"));
        let mut c = server.connect();
        c.expect("Name: ");
        for twin in ["аlice", "ΑLICE", "alıce"] {
            c.send(&format!("/register {twin} secret1"));
            c.expect("! That name is too close to an existing one: alice.\r\n");
        }
        // Fullwidth letters are NFKC `alice` itself, and so is ALICE in any case: taken.
        for same in ["ａｌｉｃｅ", "ALICE"] {
            c.send(&format!("/register {same} secret1"));
            c.expect("! The name ");
            c.expect(" is taken. Choose another, or log in with its password.\r\n");
        }
        // The interactive path says the same before asking for a password.
        c.send("аlice");
        c.expect("! That name is too close to an existing one: alice.\r\n");
        c.expect("Name: ");
        // Another script is not a look-alike; fullwidth logs in as alice.
        drop(server.register("Борис", "secret1"));
        c.send("/login ａｌｉｃｅ secret1");
        c.expect("* Hello, alice!");
        assert_eq!(
            server.texts("SELECT name FROM users ORDER BY id"),
            ["alice", "Борис"]
        );
    });
}

#[test]
fn bidi_controls_are_removed_from_chat_and_storage() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let (mut a, _) = server.register("alice", "secret1");
        let (mut b, _) = server.register("bob", "secret1");
        a.expect("* bob joined");
        a.send("pay \u{202E}txt.exe\u{202C} and \u{2066}this\u{2069} \u{200F}now");
        let line = b.expect("now\r\n");
        assert!(
            line.ends_with("alice: pay txt.exe and this now\r\n"),
            "{line:?}"
        );
        let stored = server.texts("SELECT body FROM messages");
        assert_eq!(stored, ["pay txt.exe and this now"]);
        // Emoji joined with ZWJ survive.
        a.send("👩\u{200D}👧");
        b.expect("alice: 👩\u{200D}👧\r\n");
    });
}

#[test]
fn errors_never_echo_escape_or_bidi_controls() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let mut c = server.connect();
        c.expect("Name: ");
        c.send("/nosuch\u{1b}[31m\u{202E}x");
        c.send("/login bad\u{1b}[2Jname pw1234");
        c.send("e\u{1b}]0;owned\u{7}vil");
        c.send("/quit");
        let got = c.expect_closed();
        assert!(
            got.contains("! Unknown command /nosuchx. Type /help."),
            "{got:?}"
        );
        assert!(got.contains("! No such user: badname."), "{got:?}");
        assert!(got.contains("! Invalid name: evil."), "{got:?}");
        assert!(!got.contains('\u{1b}'), "ESC echoed: {got:?}");
        assert!(!got.contains('\u{202E}'), "bidi echoed: {got:?}");
        // And after login: a private message to a hostile name.
        let (mut a, _) = server.register("alice", "secret1");
        a.send("/msg \u{1b}[5mbob\u{202E} hi");
        let got = a.drain(Duration::from_millis(300));
        assert!(got.contains("! No such user: bob"), "{got:?}");
        assert!(
            !got.contains('\u{1b}') && !got.contains('\u{202E}'),
            "{got:?}"
        );
    });
}
