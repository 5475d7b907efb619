//! The chat page in a real browser: headless Chromium driven through chromedriver
//! (WebDriver). Registering through the page, lines both ways with a telnet-protocol client,
//! a reload logged in by the remembered token, markup shown as text, and a screenshot.
//! Skipped, said on stderr, when Chromium is absent outside CI; under CI that fails.

mod common;

use common::webdriver::{self, Driver};
use common::Server;

/// The page's parts are shown or hidden by the `hidden` class.
fn shown(id: &str) -> String {
    format!("return !document.getElementById('{id}').classList.contains('hidden')")
}

/// A PNG's width and height, from its header (the IHDR chunk, which must come first); fails
/// unless the bytes are a whole PNG (signature, IHDR, IEND at the end).
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(
        png.len() > 8 + 25 + 12,
        "{} bytes: too short for a PNG",
        png.len()
    );
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "no PNG signature");
    assert_eq!(
        &png[8..16],
        b"\0\0\0\x0dIHDR",
        "the first chunk is not IHDR"
    );
    assert_eq!(
        &png[png.len() - 12..],
        b"\0\0\0\0IEND\xaeB`\x82",
        "the PNG does not end with IEND"
    );
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn a_browser_registers_chats_with_telnet_and_comes_back_by_token() {
    if let Err(why) = webdriver::available() {
        common::skip("the test", &why);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&["--web-addr", "127.0.0.1:0"]);
    let web = server.web_addr.unwrap();
    let driver = Driver::start();
    let b = driver.browser(&dir.path().join("profile"));
    b.go(&format!("http://{web}/"));

    // A new name: the page asks for the password again, then registers.
    b.wait_for("the login form", &shown("login"));
    b.type_in("#name", "alice");
    b.type_in("#password", "browser-pw-1");
    b.click("#go");
    b.wait_for("the repeat field", &shown("repeat-row"));
    b.type_in("#repeat", "browser-pw-1");
    b.click("#go");
    b.wait_for("the chat", &shown("chat"));
    b.wait_for(
        "alice in the online list",
        "return document.getElementById('people').textContent.includes('alice')",
    );

    // Lines both ways with a client of the line protocol.
    let (mut bob, _) = server.register("bob", "secret12");
    b.wait_for_text("bob joined");
    b.type_in("#say", "hello from chromium");
    b.click("#say-form button");
    bob.expect("] alice: hello from chromium\r\n");
    bob.send("hi alice, from telnet");
    b.wait_for_text("bob: hi alice, from telnet");
    b.wait_for(
        "bob in the online list",
        "return document.getElementById('people').textContent.includes('bob')",
    );
    b.wait_for(
        "#lobby in the room list",
        "return document.getElementById('rooms').textContent.includes('#lobby')",
    );

    // Markup from the server is text, never HTML.
    bob.send("<img src=x onerror=alert(1)><b>bold</b>");
    b.wait_for_text("<img src=x onerror=alert(1)><b>bold</b>");
    assert_eq!(
        b.script("return document.querySelectorAll('#log img, #log b').length"),
        0
    );

    // A private message and a mention are styled apart.
    bob.send("/msg alice psst");
    b.wait_for_text("psst");
    assert_eq!(
        b.script("return document.querySelectorAll('#log .private').length"),
        1
    );
    bob.send("alice: look here");
    b.wait_for_text("look here");
    let marked = |text: &str| {
        b.script(&format!(
            "return Array.from(document.querySelectorAll('#log .mention'))
                        .some(e => e.textContent.includes('{text}'))"
        ))
    };
    assert_eq!(marked("look here"), true);
    assert_eq!(marked("bold"), false, "a line not naming alice");

    // "Remember me" kept the token: a reload logs in with it, no form.
    assert!(b
        .script("return localStorage.getItem('besedka.token')")
        .is_string());
    b.refresh();
    b.wait_for("the chat after a reload", &shown("chat"));
    assert_eq!(b.script(&shown("login")), false);
    b.type_in("#say", "back after a reload");
    b.click("#say-form button");
    bob.expect("] alice: back after a reload\r\n");

    // Rooms: make one from the side panel, set its topic with a typed command, switch back by
    // clicking the lobby in the list.
    b.type_in("#join", "tea\n");
    b.wait_for(
        "#tea in the header",
        "return document.getElementById('room').textContent === '#tea'",
    );
    bob.expect("* alice left for #tea\r\n");
    b.type_in("#say", "/topic Green or black?\n");
    b.wait_for(
        "the topic in the header",
        "return document.getElementById('topic').textContent === 'Green or black?'",
    );
    b.wait_for(
        "#tea in the room list",
        "return document.getElementById('rooms').textContent.includes('#tea')",
    );
    b.script(
        "Array.from(document.querySelectorAll('#rooms li'))
             .find(li => li.dataset.room === '#lobby').click(); return true",
    );
    b.wait_for(
        "#lobby in the header",
        "return document.getElementById('room').textContent === '#lobby'",
    );
    bob.expect("* alice joined #lobby\r\n");

    // Dropped by the server: the page says so, and comes back by itself with the token.
    server.command("kick alice");
    bob.expect("* server kicked alice");
    b.wait_for(
        "the reconnecting notice",
        "return document.getElementById('status').textContent.includes('Reconnecting')",
    );
    bob.expect("* alice joined\r\n");
    b.wait_for(
        "the notice gone",
        &shown("status").replace("return !", "return "),
    );
    // The replay after the reconnect replaces what was shown: nothing twice.
    b.wait_for_text("back after a reload");
    assert_eq!(
        b.script(
            "return document.getElementById('log').textContent.split('hello from chromium').length"
        ),
        2
    );

    // The screenshot the browser returned: a PNG of the whole viewport, in device pixels,
    // with the chat drawn in it (a blank page of that size compresses to a few KB).
    let png = b.screenshot();
    let (width, height) = png_size(&png);
    let viewport = b.script(
        "return [window.innerWidth, window.innerHeight]
                    .map(n => Math.round(n * window.devicePixelRatio))",
    );
    assert_eq!(
        viewport,
        serde_json::json!([width, height]),
        "the screenshot is {width}x{height}"
    );
    assert!(width >= 800 && height >= 500, "{width}x{height}");
    assert!(
        png.len() > 20_000,
        "{} bytes for {width}x{height}",
        png.len()
    );
    if let Ok(to) = std::env::var("BESEDKA_SCREENSHOT") {
        std::fs::write(to, &png).unwrap();
    }

    // Log out: the token goes, and the form comes back.
    b.click("#logout");
    b.wait_for("the login form after logging out", &shown("login"));
    assert!(b
        .script("return localStorage.getItem('besedka.token')")
        .is_null());
}

#[test]
fn the_page_counts_new_lines_beside_the_rooms_you_left() {
    if let Err(why) = webdriver::available() {
        common::skip("the test", &why);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&["--web-addr", "127.0.0.1:0"]);
    let web = server.web_addr.unwrap();
    // alice was in #rust, then went to #lobby: #rust is marked.
    let (mut alice, _) = server.register("alice", "browser-pw-1");
    alice.send("/join #rust");
    alice.expect("* In #rust (");
    alice.send("/join #lobby");
    alice.expect("* In #lobby (");
    drop(alice);
    let (mut bob, _) = server.register("bob", "secret12");
    bob.send("/join #rust");
    bob.expect("* In #rust (");
    for i in 0..3 {
        bob.send(&format!("rust line {i}"));
    }
    bob.expect("bob: rust line 2\r\n");
    // And two in #lobby, where alice will be: no count beside the room you are in.
    bob.send("/join #lobby");
    bob.expect("* In #lobby (");
    bob.send("lobby one");
    bob.send("lobby two");
    bob.expect("bob: lobby two\r\n");
    let driver = Driver::start();
    let b = driver.browser(&dir.path().join("profile"));
    b.go(&format!("http://{web}/"));
    b.wait_for("the login form", &shown("login"));
    b.type_in("#name", "alice");
    b.type_in("#password", "browser-pw-1");
    b.click("#go");
    b.wait_for("the chat", &shown("chat"));
    let counts = "Array.from(document.querySelectorAll('#rooms li'))
                   .map(li => li.dataset.room + '=' + li.querySelector('.unread').textContent)
                   .join(' ')";
    let badge = &format!("return {counts}");
    b.wait_for(
        "#rust's count beside it",
        &format!("return ({counts}).includes('#rust=3')"),
    );
    // Not beside the room she is in; and gone once she has been to #rust.
    let shown = b.script(badge);
    let shown = shown.as_str().unwrap();
    assert!(
        shown.contains("#lobby= ") || shown.ends_with("#lobby="),
        "{shown}"
    );
    b.click("#rooms li[data-room='#rust']");
    b.wait_for_text("rust line 2");
    b.wait_for(
        "#rust's count gone",
        &format!("return ({counts}).includes('#rust=') && !({counts}).includes('#rust=3')"),
    );
}
