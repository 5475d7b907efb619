//! The chat page: `page/index.html` with `page/app.css`, `page/log.js` and `page/app.js` put inline, built
//! once at start. Its `Content-Security-Policy` allows exactly that script and that style (by
//! their SHA-256) and WebSockets to the page's own origin, and nothing else: no other
//! script, no inline handlers, no frames, no form posts, no outside fetches.

use std::io::Write;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::{respond, Socket};

const HTML: &str = include_str!("page/index.html");
const STYLE: &str = include_str!("page/app.css");
/// `log.js` (the message log) first: `app.js` uses it.
const SCRIPT: &str = concat!(include_str!("page/log.js"), include_str!("page/app.js"));

/// The page and its policy, ready to send.
pub struct Page {
    body: Vec<u8>,
    csp: String,
}

fn hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

impl Page {
    pub fn new() -> Page {
        let body = HTML
            .replace("/*STYLE*/", STYLE)
            .replace("/*SCRIPT*/", SCRIPT)
            .into_bytes();
        let csp = format!(
            "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; img-src data:; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            hash(SCRIPT),
            hash(STYLE)
        );
        Page { body, csp }
    }

    pub fn serve(&self, sock: &Socket) {
        let headers = [
            ("Content-Security-Policy", self.csp.as_str()),
            ("Referrer-Policy", "no-referrer"),
            ("X-Frame-Options", "DENY"),
            ("Cache-Control", "no-cache"),
        ];
        respond(sock, 200, "text/html; charset=utf-8", &headers, &self.body);
        let _ = (&*sock).flush();
    }
}

impl Default for Page {
    fn default() -> Self {
        Page::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_the_inline_script_and_style_that_are_in_the_page() {
        let page = Page::new();
        let body = String::from_utf8(page.body.clone()).unwrap();
        assert!(body.contains(&format!("<script>{SCRIPT}</script>")));
        assert!(body.contains(&format!("<style>{STYLE}</style>")));
        assert!(page.csp.contains(&hash(SCRIPT)) && page.csp.contains(&hash(STYLE)));
        assert!(page.csp.starts_with("default-src 'none'"));
        // Nothing in the page would need more than the policy allows.
        assert!(
            !body.contains(" style=\"") && !body.contains(" onclick="),
            "inline"
        );
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "outside"
        );
    }
}
