//! Just enough W3C WebDriver to drive headless Chromium through `chromedriver`: sessions,
//! navigation, elements, script, screenshots. Synchronous, over plain HTTP on loopback (one
//! request per connection), so the tests need no async runtime.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The key W3C WebDriver names an element reference by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long a wait for the page may take.
pub const PAGE_WAIT: Duration = Duration::from_secs(15);

/// Where Debian puts them.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A running `chromedriver`, stopped when dropped.
pub struct Driver {
    child: Child,
    addr: SocketAddr,
}

/// Chromium and chromedriver, or why the browser tests cannot run here (the caller skips:
/// [`super::skip`], which fails under CI).
pub fn available() -> Result<(), String> {
    for bin in [CHROMIUM, CHROMEDRIVER] {
        if !Path::new(bin).exists() {
            return Err(format!(
                "{bin} is missing (apt-get install chromium chromium-driver)"
            ));
        }
    }
    Ok(())
}

impl Driver {
    pub fn start() -> Driver {
        // A free port: bound, read, released (chromedriver binds it next).
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Driver {
            child,
            addr: ([127, 0, 0, 1], port).into(),
        };
        let start = Instant::now();
        loop {
            if let Ok(v) = driver.call("GET", "/status", None) {
                if v["value"]["ready"] == true {
                    return driver;
                }
            }
            assert!(
                start.elapsed() < PAGE_WAIT,
                "chromedriver never became ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One WebDriver command; the response's JSON, or its error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let mut s = TcpStream::connect(self.addr).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        // chromedriver keeps the connection open whatever `Connection` says: read the head,
        // then as many bytes as it announces.
        let mut resp = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        let (head_end, length) = loop {
            let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("chromedriver closed the connection".into());
            }
            resp.extend_from_slice(&chunk[..n]);
            if let Some(end) = resp.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&resp[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .ok_or("no Content-Length from chromedriver")?;
                break (end + 4, length);
            }
        };
        while resp.len() < head_end + length {
            let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            resp.extend_from_slice(&chunk[..n]);
        }
        let body = String::from_utf8_lossy(&resp[head_end..]).into_owned();
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        if v["value"].get("error").is_some() {
            return Err(v["value"].to_string());
        }
        Ok(v)
    }

    /// A headless browser with its profile in `profile`.
    pub fn browser(&self, profile: &Path) -> Browser<'_> {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1100,720",
                         "--no-first-run", "--disable-extensions",
                         format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let v = self
            .call("POST", "/session", Some(caps))
            .expect("a browser session");
        let id = v["value"]["sessionId"]
            .as_str()
            .expect("session id")
            .to_string();
        Browser { driver: self, id }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session.
pub struct Browser<'a> {
    driver: &'a Driver,
    id: String,
}

impl Browser<'_> {
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.id);
        self.driver
            .call(method, &path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub fn go(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn refresh(&self) {
        self.cmd("POST", "/refresh", Some(json!({})));
    }

    fn element(&self, css: &str) -> String {
        let v = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v["value"][ELEMENT]
            .as_str()
            .expect("element id")
            .to_string()
    }

    /// Types `text` into the element (as keystrokes).
    pub fn type_in(&self, css: &str, text: &str) {
        let e = self.element(css);
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }

    pub fn click(&self, css: &str) {
        let e = self.element(css);
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    /// Runs `script` (a function body) in the page; its return value.
    pub fn script(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )["value"]
            .clone()
    }

    /// Waits until `script` returns true.
    pub fn wait_for(&self, what: &str, script: &str) {
        let start = Instant::now();
        while start.elapsed() < PAGE_WAIT {
            if self.script(script) == true {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = self.script("return document.getElementById('log').textContent");
        panic!("the page never showed {what}; its log: {log}");
    }

    /// Waits until the message log's text contains `text`.
    pub fn wait_for_text(&self, text: &str) {
        let script = format!(
            "return document.getElementById('log').textContent.includes({})",
            Value::from(text)
        );
        self.wait_for(text, &script);
    }

    /// Makes the viewport `width`×`height` CSS pixels at one device pixel each, as a phone
    /// (`mobile`: the viewport meta tag counts, as on a phone) or a desktop would have it.
    /// Through Chromium's DevTools protocol: a window can't be made as narrow as a phone.
    pub fn viewport(&self, width: u32, height: u32, mobile: bool) {
        let params = json!({"width": width, "height": height,
                            "deviceScaleFactor": 1, "mobile": mobile});
        self.cmd(
            "POST",
            "/goog/cdp/execute",
            Some(json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": params})),
        );
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let v = self.cmd("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(v["value"].as_str().expect("base64 PNG"))
            .expect("valid base64")
    }
}

impl Drop for Browser<'_> {
    fn drop(&mut self) {
        let _ = self
            .driver
            .call("DELETE", &format!("/session/{}", self.id), None);
    }
}
