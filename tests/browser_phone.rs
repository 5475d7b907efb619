//! The chat page on a phone (390×844) and on a desktop (1280×800), in headless Chromium
//! through chromedriver: the log is what scrolls, the input stays in view (also when the
//! keyboard takes half the screen), the online list and rooms are in a drawer on the phone and
//! beside the log on the desktop, lines show `HH:MM` under a line per day, a `/join` keeps
//! the private lines, the "repeat the password" hint is not an error. Skipped, said on stderr,
//! when Chromium is absent outside CI; under CI that fails.
//!
//! `BESEDKA_SCREENSHOTS=DIR` keeps the screenshots as DIR/web-page-phone.png and
//! DIR/web-page.png (how the ones in docs/ were made).

mod common;

use common::webdriver::{self, Browser, Driver};
use common::{Client, Server};
use serde_json::Value;

/// The page's parts are shown or hidden by the `hidden` class.
fn shown(id: &str) -> String {
    format!("return !document.getElementById('{id}').classList.contains('hidden')")
}

/// Whether the element is drawn at all (not `display: none`, itself or above).
fn visible(b: &Browser, css: &str) -> bool {
    b.script(&format!(
        "return document.querySelector({}).checkVisibility()",
        Value::from(css)
    )) == true
}

/// The element's rectangle against the viewport: `[top, bottom, left, right, innerWidth,
/// innerHeight]`.
fn rect(b: &Browser, css: &str) -> Vec<f64> {
    let v = b.script(&format!(
        "const r = document.querySelector({}).getBoundingClientRect();
         return [r.top, r.bottom, r.left, r.right, window.innerWidth, window.innerHeight]",
        Value::from(css)
    ));
    v.as_array()
        .expect("numbers")
        .iter()
        .map(|n| n.as_f64().expect("a number"))
        .collect()
}

/// The element is drawn, with all of it inside the viewport.
fn assert_in_view(b: &Browser, css: &str, when: &str) {
    assert!(visible(b, css), "{css} is not shown {when}");
    let r = rect(b, css);
    let (top, bottom, left, right, width, height) = (r[0], r[1], r[2], r[3], r[4], r[5]);
    assert!(
        top >= 0.0 && bottom <= height && left >= 0.0 && right <= width && bottom > top,
        "{css} {when} is at {top}..{bottom} x {left}..{right}, the viewport {width}x{height}"
    );
}

/// The page itself does not scroll: everything but the log fits in the viewport.
fn assert_page_fits(b: &Browser, when: &str) {
    let sizes = b.script(
        "const e = document.scrollingElement;
         return [e.scrollHeight, window.innerHeight, e.scrollWidth, window.innerWidth]",
    );
    let n = |i: usize| sizes[i].as_f64().unwrap();
    assert!(
        n(0) <= n(1) && n(2) <= n(3),
        "the page scrolls {when}: {sizes} (scroll height, viewport height, scroll width, width)"
    );
}

/// Registers `name` through the page's form, checking on the way that the request to repeat
/// the password is a hint (not in the error colour) and that the error line is empty.
fn register(b: &Browser, web: std::net::SocketAddr, name: &str) {
    b.go(&format!("http://{web}/"));
    b.wait_for("the login form", &shown("login"));
    b.type_in("#name", name);
    b.type_in("#password", "phone-pw-12");
    b.click("#go");
    b.wait_for("the repeat field", &shown("repeat-row"));
    b.wait_for(
        "the hint to repeat the password",
        "return document.getElementById('login-hint').textContent.includes('repeat the password')",
    );
    let colours = b.script(
        "const c = (id) => getComputedStyle(document.getElementById(id)).color;
         return [c('login-hint'), c('login-error'), document.getElementById('login-error').textContent]",
    );
    assert_ne!(colours[0], colours[1], "the hint is in the error colour");
    assert_eq!(colours[2], "", "an error is shown with the hint");
    b.type_in("#repeat", "phone-pw-12");
    b.click("#go");
    b.wait_for("the chat", &shown("chat"));
}

/// Says a line in the page.
fn say(b: &Browser, text: &str) {
    b.type_in("#say", &format!("{text}\n"));
}

fn start() -> Option<(tempfile::TempDir, Server, Driver)> {
    if let Err(why) = webdriver::available() {
        common::skip("the test", &why);
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&["--web-addr", "127.0.0.1:0"]);
    Some((dir, server, Driver::start()))
}

/// Keeps a screenshot in `$BESEDKA_SCREENSHOTS/name` when asked to; checks it is a PNG.
fn keep_screenshot(b: &Browser, name: &str) {
    let png = b.screenshot();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "no PNG signature");
    if let Ok(dir) = std::env::var("BESEDKA_SCREENSHOTS") {
        std::fs::write(std::path::Path::new(&dir).join(name), &png).unwrap();
    }
}

/// Lines from a telnet client, waited for in the page.
fn lines_from(bob: &mut Client, b: &Browser, n: usize) {
    for i in 1..=n {
        bob.send(&format!(
            "line {i} of {n} from telnet, long enough to wrap on a phone"
        ));
    }
    b.wait_for_text(&format!("line {n} of {n}"));
}

#[test]
fn on_a_phone_the_log_scrolls_the_input_stays_in_view_and_a_drawer_holds_the_lists() {
    let Some((dir, server, driver)) = start() else {
        return;
    };
    let web = server.web_addr.unwrap();
    let b = driver.browser(&dir.path().join("profile"));
    b.viewport(390, 844, true);
    register(&b, web, "alice");
    assert_eq!(b.script("return window.innerWidth"), 390);
    assert_in_view(&b, "#say", "after login");
    assert_in_view(&b, "#say-form button", "after login");
    assert_page_fits(&b, "after login");

    // Many lines: the log scrolls, the page does not, the input stays where it was.
    let (mut bob, _) = server.register("bob", "secret12");
    b.wait_for_text("bob joined");
    lines_from(&mut bob, &b, 60);
    let log = b.script(
        "const l = document.getElementById('log');
         return [l.scrollHeight > l.clientHeight, getComputedStyle(l).overflowY,
                 l.scrollTop + l.clientHeight >= l.scrollHeight - 2]",
    );
    assert_eq!(log, serde_json::json!([true, "auto", true]), "the log");
    assert_in_view(&b, "#say", "after 60 lines");
    assert_page_fits(&b, "after 60 lines");
    assert_eq!(b.script("return window.scrollY"), 0);

    // The keyboard open: the viewport left above it is what the page fills.
    b.viewport(390, 420, true);
    b.wait_for(
        "the page resized to the space above the keyboard",
        "return window.innerHeight === 420",
    );
    assert_in_view(&b, "#say", "with the keyboard open");
    assert_page_fits(&b, "with the keyboard open");
    b.wait_for(
        "the newest line still in view over the keyboard",
        "const l = document.getElementById('log');
         return l.scrollTop + l.clientHeight >= l.scrollHeight - 2",
    );
    b.viewport(390, 844, true);

    // The lists are in the drawer, closed at first; its button opens and closes it.
    assert!(!visible(&b, "#side"), "the side panel shows on a phone");
    assert_in_view(&b, "#drawer", "as the drawer's button");
    b.click("#drawer");
    assert_in_view(&b, "#side", "with the drawer open");
    b.wait_for(
        "both in the drawer's online list",
        "const t = document.getElementById('people').textContent;
         return t.includes('alice') && t.includes('bob')",
    );
    b.wait_for(
        "#lobby in the drawer's rooms",
        "return document.getElementById('rooms').textContent.includes('#lobby')",
    );
    assert_eq!(
        b.script("return document.getElementById('drawer').getAttribute('aria-expanded')"),
        "true"
    );
    keep_screenshot(&b, "web-page-phone-drawer.png");
    b.click("#drawer-close");
    assert!(
        !visible(&b, "#side"),
        "the drawer stays open after closing it"
    );
    b.click("#drawer");
    assert!(visible(&b, "#side"));
    b.click("#drawer");
    assert!(
        !visible(&b, "#side"),
        "the drawer's button does not close it"
    );

    // A room made in the drawer: joined, and the drawer gets out of the way.
    b.click("#drawer");
    b.type_in("#join", "tea\n");
    b.wait_for(
        "#tea in the header",
        "return document.getElementById('room').textContent === '#tea'",
    );
    assert!(
        !visible(&b, "#side"),
        "the drawer stays open over the new room"
    );
    assert_in_view(&b, "#say", "in the new room");

    // Emoji have a font to come from where the system has one.
    let fonts = b.script("return getComputedStyle(document.getElementById('log')).fontFamily");
    let fonts = fonts.as_str().unwrap();
    for emoji in ["Noto Color Emoji", "Apple Color Emoji", "Segoe UI Emoji"] {
        assert!(fonts.contains(emoji), "no {emoji} in {fonts}");
    }

    // For the docs: the phone with a conversation in it.
    bob.send("/join #tea");
    b.wait_for_text("bob joined");
    conversation(&b, &mut bob);
    keep_screenshot(&b, "web-page-phone.png");
}

/// A few lines in the room alice and bob are in, for a screenshot, with the online list and
/// the rooms up to date.
fn conversation(b: &Browser, bob: &mut Client) {
    bob.send("/msg alice are you coming to the review at 3?");
    b.wait_for_text("review at 3");
    bob.send("/topic Tea, and the 0.9 release");
    b.wait_for(
        "the topic",
        "return document.getElementById('topic').textContent.includes('0.9')",
    );
    bob.send("the release notes are up 🎉");
    b.wait_for_text("release notes are up");
    say(b, "great, reading them now");
    bob.expect("great, reading them now");
    bob.send("/me puts the kettle on ☕");
    b.wait_for_text("puts the kettle on");
    bob.send("alice: green or black?");
    b.wait_for_text("green or black?");
    say(b, "green, thanks 🙂");
    bob.expect("green, thanks");
    say(b, "/msg bob yes, see you at 3");
    b.wait_for_text("see you at 3");
    b.wait_for(
        "the lists up to date",
        "return document.getElementById('people').textContent.includes('bob')
                && document.getElementById('rooms').textContent.includes('#tea')",
    );
}

#[test]
fn on_a_desktop_the_lists_are_beside_the_log_without_a_drawer() {
    let Some((dir, server, driver)) = start() else {
        return;
    };
    let web = server.web_addr.unwrap();
    let b = driver.browser(&dir.path().join("profile"));
    b.viewport(1280, 800, false);
    register(&b, web, "alice");
    let (mut bob, _) = server.register("bob", "secret12");
    b.wait_for_text("bob joined");
    lines_from(&mut bob, &b, 40);
    assert_in_view(&b, "#side", "on a desktop");
    assert!(
        !visible(&b, "#drawer"),
        "the drawer's button shows on a desktop"
    );
    b.wait_for(
        "bob in the online list",
        "return document.getElementById('people').textContent.includes('bob')",
    );
    assert_in_view(&b, "#say", "on a desktop");
    assert_page_fits(&b, "on a desktop");
    // The side panel is beside the log, not under it.
    let (log, side) = (rect(&b, "#log"), rect(&b, "#side"));
    assert!(
        side[2] >= log[3] && side[0] < log[1],
        "log {log:?}, side {side:?}"
    );

    // A join just after someone left: the rooms are asked for again all the same (the
    // refresh for the leave, a second later, used to swallow the join's).
    bob.send("/join #tea");
    b.wait_for_text("bob left for #tea");
    say(&b, "/join #tea");
    b.wait_for(
        "#tea in the room list",
        "return document.getElementById('rooms').textContent.includes('#tea')",
    );
    conversation(&b, &mut bob);
    keep_screenshot(&b, "web-page.png");
}

#[test]
fn lines_show_hours_and_minutes_under_a_line_for_each_day() {
    let Some((dir, server, driver)) = start() else {
        return;
    };
    let web = server.web_addr.unwrap();
    // A line from yesterday and one from today, in the history a login replays.
    let (mut bob, _) = server.register("bob", "secret12");
    bob.send("said yesterday");
    bob.send("said today");
    let (mut carol, _) = server.register("carol", "secret12");
    carol.send("/history 5");
    carol.expect("said today");
    let aged = server
        .sql()
        .execute(
            "UPDATE messages SET created_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-1 day')
             WHERE body = 'said yesterday'",
            [],
        )
        .unwrap();
    assert_eq!(aged, 1);

    let b = driver.browser(&dir.path().join("profile"));
    b.viewport(390, 844, true);
    register(&b, web, "alice");
    b.wait_for_text("said today");
    bob.send("said live");
    b.wait_for_text("said live");

    // Every time in the log is HH:MM, history and live alike; the full time is its title.
    let times = b.script(
        "return Array.from(document.querySelectorAll('#log .time'))
                    .map(t => [t.textContent, t.title, t.parentElement.textContent])",
    );
    let times = times.as_array().unwrap();
    assert!(times.len() >= 3, "{times:?}");
    for t in times {
        let (shown, title) = (t[0].as_str().unwrap(), t[1].as_str().unwrap());
        let hhmm = shown.len() == 5
            && shown.as_bytes()[2] == b':'
            && shown.bytes().filter(u8::is_ascii_digit).count() == 4;
        assert!(hhmm, "{shown:?} is not HH:MM, in {t}");
        assert!(
            title.len() >= 19 && title.as_bytes()[4] == b'-',
            "no full date in the title {title:?}"
        );
    }

    // A line per day, before the day's first line: yesterday's, then today's.
    let order = b.script(
        "return Array.from(document.querySelectorAll('#log .day, #log div:has(> .time)'))
                    .map(e => e.classList.contains('day') ? 'day' : e.textContent)
                    .filter(s => s === 'day' || /said (yesterday|today|live)/.test(s))
                    .map(s => s === 'day' ? s : s.match(/said \\w+/)[0])",
    );
    assert_eq!(
        order,
        serde_json::json!(["day", "said yesterday", "day", "said today", "said live"]),
    );
    let days = b.script(
        "return Array.from(document.querySelectorAll('#log .day')).map(d => d.textContent)",
    );
    let days = days.as_array().unwrap();
    assert_ne!(days[0], days[1], "two days with one name");
}

#[test]
fn a_private_message_sent_before_a_join_stays_in_the_log() {
    let Some((dir, server, driver)) = start() else {
        return;
    };
    let web = server.web_addr.unwrap();
    let (mut bob, _) = server.register("bob", "secret12");
    bob.send("before alice came");
    // A line in #x's history, from a minute before the private lines.
    let (mut carol, _) = server.register("carol", "secret12");
    carol.send("/join #x");
    carol.expect("You are in #x");
    carol.send("earlier in #x");
    carol.send("/history 1");
    carol.expect("earlier in #x");
    let aged = server
        .sql()
        .execute(
            "UPDATE messages SET created_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-1 minute')
             WHERE body = 'earlier in #x'",
            [],
        )
        .unwrap();
    assert_eq!(aged, 1);
    let b = driver.browser(&dir.path().join("profile"));
    b.viewport(390, 844, true);
    register(&b, web, "alice");
    say(&b, "/msg bob see you in #x");
    bob.expect("alice -> bob: see you in #x");
    b.wait_for_text("see you in #x");
    bob.send("/msg alice on my way");
    b.wait_for_text("on my way");
    say(&b, "/join #x");
    b.wait_for(
        "#x in the header",
        "return document.getElementById('room').textContent === '#x'",
    );
    bob.send("/join #x");
    b.wait_for_text("bob joined");
    bob.send("here");
    b.wait_for_text("bob: here");
    // The private lines stay, in time order with the room's history; the lobby's lines go
    // (one room at a time).
    let log = b.script("return document.getElementById('log').textContent");
    let log = log.as_str().unwrap();
    let at = ["earlier in #x", "see you in #x", "on my way", "bob: here"].map(|t| log.find(t));
    assert!(
        at.iter().all(Option::is_some) && at.windows(2).all(|w| w[0] < w[1]),
        "{at:?} in {log}"
    );
    assert!(!log.contains("before alice came"), "{log}");
}
