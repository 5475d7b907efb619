//! The client's real address when a proxy or load balancer stands in front (`--trusted-proxy`):
//! the PROXY protocol header (v1 text or v2 binary, as haproxy's `send-proxy[-v2]`, nginx's
//! `proxy_protocol on` and cloud load balancers send it; parsed by `ppp`), and on the web
//! listener the `X-Forwarded-For` request header.
//!
//! Only a connection from a trusted proxy may say whom it brings. From anywhere else a PROXY
//! header is an error and forwarding headers are ignored: a client must not choose the address
//! the limits and bans see.

use std::io::{self, Read};
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ppp::{v1, v2, HeaderResult, PartialResult};

use super::socket::Socket;

/// The longest PROXY header taken (v1 is at most 107 bytes; v2 is 16 + its addresses and
/// TLVs, which haproxy keeps to a few hundred bytes).
const MAX_HEADER: usize = 1024;

/// How long a connection from a trusted proxy may stay silent before it is taken to carry no
/// header. A proxy sends its header at once; a telnet client waits for the server to speak
/// first, so a direct connection from the proxy's machine waits this long for its greeting.
pub const HEADER_WAIT: Duration = Duration::from_secs(1);

/// The v2 signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// What a connection's first bytes said about where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Said {
    /// No PROXY header: the connection is the peer's own.
    Nothing,
    /// A header for the proxy's own connection (health checks: v1 `UNKNOWN`, v2 `LOCAL`).
    Local,
    /// The client's address and port.
    Client(SocketAddr),
}

/// Whether `bytes` may still become a PROXY header (they are a prefix of one, or start one).
fn may_be_header(bytes: &[u8]) -> bool {
    let starts = |sig: &[u8]| {
        let n = bytes.len().min(sig.len());
        bytes[..n] == sig[..n]
    };
    starts(b"PROXY ") || starts(V2_SIGNATURE)
}

/// What a whole header says; `Err` if it is not one.
fn said(header: &HeaderResult) -> Result<Said, String> {
    match header {
        HeaderResult::V1(Ok(h)) => Ok(match h.addresses {
            v1::Addresses::Unknown => Said::Local,
            v1::Addresses::Tcp4(a) => Said::Client((a.source_address, a.source_port).into()),
            v1::Addresses::Tcp6(a) => Said::Client((a.source_address, a.source_port).into()),
        }),
        HeaderResult::V2(Ok(h)) => Ok(match (h.command, h.addresses) {
            (v2::Command::Local, _) => Said::Local,
            (_, v2::Addresses::IPv4(a)) => Said::Client((a.source_address, a.source_port).into()),
            (_, v2::Addresses::IPv6(a)) => Said::Client((a.source_address, a.source_port).into()),
            // Unix sockets or no address: nothing usable about the client.
            _ => Said::Local,
        }),
        HeaderResult::V1(Err(e)) => Err(format!("a bad PROXY v1 header ({e})")),
        HeaderResult::V2(Err(e)) => Err(format!("a bad PROXY v2 header ({e})")),
    }
}

/// The length of a whole header in `bytes`, and what it says; `Ok(None)` while more bytes
/// are needed.
fn parse(bytes: &[u8]) -> Result<Option<(usize, Said)>, String> {
    let header = HeaderResult::parse(bytes);
    if header.is_incomplete() {
        return Ok(None);
    }
    let len = match &header {
        HeaderResult::V1(Ok(h)) => h.header.len(),
        HeaderResult::V2(Ok(h)) => h.len(),
        _ => 0,
    };
    Ok(Some((len, said(&header)?)))
}

/// Reads a PROXY header, if the connection starts with one, from a trusted proxy's
/// connection, by `deadline`; leaves every byte after it for the session. `Err` (the
/// connection is to be closed) for a malformed or oversized header, or no whole header by the
/// deadline.
pub fn read_header(sock: &Socket, deadline: Instant) -> Result<Said, String> {
    let mut buf = [MaybeUninit::<u8>::uninit(); MAX_HEADER];
    let wait_until = (Instant::now() + HEADER_WAIT).min(deadline);
    let mut seen = 0;
    loop {
        let now = Instant::now();
        // Until the first byte, wait at most HEADER_WAIT; once a header has begun, until
        // the login deadline.
        let until = if seen == 0 { wait_until } else { deadline };
        let left = until.saturating_duration_since(now);
        if left.is_zero() {
            return if seen == 0 {
                Ok(Said::Nothing)
            } else {
                Err("no whole PROXY header in time".into())
            };
        }
        sock.set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        let n = match sock.peek(&mut buf) {
            Ok(0) => return Err("closed before its PROXY header".into()),
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.to_string()),
        };
        // SAFETY: `peek` initialized the first `n` bytes.
        let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n) };
        if !may_be_header(bytes) {
            return Ok(Said::Nothing);
        }
        if let Some((len, said)) = parse(bytes)? {
            let mut header = vec![0u8; len];
            let mut reader = sock;
            reader
                .read_exact(&mut header)
                .map_err(|e| format!("cannot read the PROXY header: {e}"))?;
            return Ok(said);
        }
        if n == MAX_HEADER {
            return Err("a PROXY header longer than 1 KiB".into());
        }
        if n == seen {
            // Part of a header is here and no more yet: peek would return at once again.
            std::thread::sleep(Duration::from_millis(5));
        }
        seen = n;
    }
}

/// Whether a connection's first bytes are a PROXY protocol header, v1 or v2 (one sent where
/// none is trusted).
pub fn is_header(first: &[u8]) -> bool {
    first.starts_with(b"PROXY ") || first.starts_with(V2_SIGNATURE)
}

/// The client's address from a request's `X-Forwarded-For` headers, as sent by a trusted
/// proxy. Each proxy appends the address it took the request from, so the hops are read from
/// the right, skipping the ones that are trusted proxies themselves; the first other is the
/// client (an address the client wrote itself is further left, never reached). `None` if the
/// headers name no usable address.
///
/// `Forwarded` (RFC 7239) is not read: nginx, Caddy, haproxy and the cloud balancers append
/// to `X-Forwarded-For` and pass a client's own `Forwarded` through untouched, so believing it
/// would let any browser choose its address.
pub fn forwarded<'a>(
    headers: impl Iterator<Item = (&'a str, &'a str)>,
    trusted: impl Fn(IpAddr) -> bool,
) -> Option<IpAddr> {
    let hops: Vec<Option<IpAddr>> = headers
        .filter(|(n, _)| n.eq_ignore_ascii_case("x-forwarded-for"))
        .flat_map(|(_, v)| v.split(','))
        .map(parse_node)
        .collect();
    let mut client = None;
    for hop in hops.into_iter().rev() {
        let ip = hop?;
        client = Some(ip);
        if !trusted(ip) {
            break;
        }
    }
    client
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = node.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    node.strip_prefix('[')
        .and_then(|r| r.split(']').next())
        .and_then(|ip| ip.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn headers_of_both_versions_say_the_client() {
        let v1 = b"PROXY TCP4 192.0.2.7 127.0.0.1 4711 7777\r\nName";
        assert_eq!(
            parse(v1),
            Ok(Some((42, Said::Client("192.0.2.7:4711".parse().unwrap()))))
        );
        assert_eq!(parse(b"PROXY TCP4 192.0.2.7 12"), Ok(None), "incomplete");
        assert_eq!(parse(b"PROXY UNKNOWN\r\n"), Ok(Some((15, Said::Local))));
        assert!(parse(b"PROXY TCP4 nonsense here 1 2\r\n").is_err());
        let mut v2 = V2_SIGNATURE.to_vec();
        v2.extend_from_slice(&[
            0x21, 0x11, 0, 12, 192, 0, 2, 8, 127, 0, 0, 1, 0x12, 0x67, 0x1e, 0x61,
        ]);
        assert_eq!(
            parse(&v2),
            Ok(Some((28, Said::Client("192.0.2.8:4711".parse().unwrap()))))
        );
        assert_eq!(parse(&v2[..20]), Ok(None));
        assert!(may_be_header(b"PRO") && may_be_header(b"\r\n\r\n\0"));
        assert!(!may_be_header(b"GET / HTTP/1.1") && !may_be_header(b"SSH-2.0"));
    }

    #[test]
    fn forwarding_headers_are_read_from_the_right_skipping_trusted_hops() {
        let trusted = |ip: IpAddr| ip.is_loopback() || ip == "10.0.0.2".parse::<IpAddr>().unwrap();
        let h = [("X-Forwarded-For", "198.51.100.9, 192.0.2.5, 10.0.0.2")];
        assert_eq!(forwarded(h.iter().copied(), trusted), Some(ip("192.0.2.5")));
        // A client's own forged entry on the left is not believed.
        let h = [
            ("x-forwarded-for", "1.2.3.4"),
            ("X-Forwarded-For", "192.0.2.5"),
        ];
        assert_eq!(forwarded(h.iter().copied(), trusted), Some(ip("192.0.2.5")));
        // A client's own Forwarded header is not believed (proxies pass it through).
        let h = [
            ("Forwarded", "for=198.51.100.9"),
            ("X-Forwarded-For", "192.0.2.99"),
        ];
        assert_eq!(
            forwarded(h.iter().copied(), trusted),
            Some(ip("192.0.2.99"))
        );
        let h = [("Forwarded", "for=198.51.100.9")];
        assert_eq!(forwarded(h.iter().copied(), trusted), None);
        let h = [("X-Forwarded-For", "[2001:db8::17]:4711, unknown")];
        assert_eq!(
            forwarded(h.iter().copied(), trusted),
            None,
            "an unusable hop"
        );
        let h = [("X-Forwarded-For", "[2001:db8::17]:4711")];
        assert_eq!(
            forwarded(h.iter().copied(), trusted),
            Some(ip("2001:db8::17"))
        );
        let h: [(&str, &str); 0] = [];
        assert_eq!(forwarded(h.iter().copied(), trusted), None);
    }

    #[test]
    fn a_header_is_recognized_by_its_first_bytes() {
        assert!(is_header(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"));
        assert!(is_header(b"PROXY UNKNOWN\r\n"));
        assert!(is_header(b"\r\n\r\n\0\r\nQUIT\n\x21\x11\0\x0c"));
        assert!(!is_header(b"PROXYMAN\r\n") && !is_header(b"\r\n\r\nhello"));
    }
}
