//! A raw IRC client for the tests: a server with an IRC listener, and logging in with SASL
//! PLAIN as weechat does (tests/irc.rs, tests/irc_moderation.rs).

use base64::Engine;

use super::{Client, Server};

/// A server with an IRC listener and `extra` options.
pub fn server(extra: &[&str]) -> Server {
    Server::start(&[&["--irc-addr", "127.0.0.1:0"], extra].concat())
}

pub fn irc(server: &Server) -> Client {
    Client::connect(
        server
            .irc_addr
            .expect("the IRC listener in the startup line"),
    )
}

pub fn plain(name: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{name}\0{name}\0{password}"))
}

/// Negotiates SASL PLAIN as weechat does, up to `AUTHENTICATE`'s answer (returned).
pub fn sasl(server: &Server, name: &str, password: &str) -> (Client, String) {
    let mut c = irc(server);
    c.send("CAP LS 302");
    c.send(&format!("NICK {name}"));
    c.send(&format!("USER {name} 0 * :{name}"));
    c.expect(":besedka CAP * LS :sasl=PLAIN server-time ");
    c.send("CAP REQ :sasl");
    c.expect(&format!("CAP {name} ACK :sasl\r\n"));
    c.send("AUTHENTICATE PLAIN");
    c.expect("AUTHENTICATE +\r\n");
    c.send(&format!("AUTHENTICATE {}", plain(name, password)));
    let answer = c.expect(" :SASL authentication ");
    (c, answer)
}

/// Logged in with SASL, through the burst, its JOIN and the channel's NAMES.
pub fn sasl_login(server: &Server, name: &str, password: &str) -> Client {
    let (mut c, answer) = sasl(server, name, password);
    assert!(answer.contains(" 900 "), "{answer}");
    c.expect("successful\r\n");
    c.send("CAP END");
    c.expect(&format!(
        ":besedka 001 {name} :Welcome to besedka, {name}\r\n"
    ));
    c.expect(" 366 ");
    c.expect("\r\n");
    c
}

/// Logged in with SASL and the IRCv3 capabilities `caps` (space-separated, `sasl` added),
/// through the burst, its JOIN and the channel's NAMES.
pub fn login_with_caps(server: &Server, name: &str, password: &str, caps: &str) -> Client {
    login_with_caps_burst(server, name, password, caps).0
}

/// As [`login_with_caps`], with what came from `CAP END` to the end of the first channel's
/// `NAMES` (the registration burst, the JOIN, the history if any).
pub fn login_with_caps_burst(
    server: &Server,
    name: &str,
    password: &str,
    caps: &str,
) -> (Client, String) {
    let mut c = irc(server);
    c.send("CAP LS 302");
    c.send(&format!("NICK {name}"));
    c.send(&format!("USER {name} 0 * :{name}"));
    c.expect(":besedka CAP * LS :");
    c.send(&format!("CAP REQ :sasl {caps}"));
    c.expect(&format!("CAP {name} ACK :sasl {caps}\r\n"));
    c.send("AUTHENTICATE PLAIN");
    c.expect("AUTHENTICATE +\r\n");
    c.send(&format!("AUTHENTICATE {}", plain(name, password)));
    c.expect(" 903 ");
    c.send("CAP END");
    let mut burst = c.expect(" 366 ");
    burst.push_str(&c.expect("\r\n"));
    (c, burst)
}
