//! A TLS client for the tests (rustls, trusting the certificate `besedka gen-cert` made).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use super::{bin, WAIT};

/// Makes a certificate for `localhost` with `besedka gen-cert`; returns (cert, key).
pub fn gen_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let out = std::process::Command::new(bin())
        .args(["gen-cert", "--host", "localhost", "--out"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "the key is readable by its owner only");
    (cert, key)
}

/// `serve`'s flags for a TLS listener on a free port, with a certificate `gen_cert` makes in
/// `dir`; and that certificate, for the client to trust.
pub fn listener_flags(dir: &Path) -> (Vec<String>, PathBuf) {
    let (cert, key) = gen_cert(dir);
    let flags = ["--tls-addr", "127.0.0.1:0", "--tls-cert"]
        .iter()
        .map(|s| s.to_string())
        .chain([
            cert.display().to_string(),
            "--tls-key".into(),
            key.display().to_string(),
        ])
        .collect();
    (flags, cert)
}

/// A server with every way in (telnet, TLS, SSH, web) on free ports, its certificate and
/// host key in `dir` (the certificate is `dir/cert.pem`), `extra` flags after; per-address
/// limits apply to loopback.
pub fn all_ways(dir: &Path, extra: &[&str]) -> super::Server {
    let (tls, _) = listener_flags(dir);
    let host_key = dir.join("host_key");
    let mut args: Vec<&str> = tls.iter().map(String::as_str).collect();
    args.extend([
        "--ssh-addr",
        "127.0.0.1:0",
        "--ssh-host-key",
        host_key.to_str().unwrap(),
        "--web-addr",
        "127.0.0.1:0",
    ]);
    args.extend(extra);
    super::Server::start_strict(&args)
}

pub struct TlsClient {
    pub tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    buf: Vec<u8>,
}

impl TlsClient {
    pub fn connect(addr: SocketAddr, cert: &Path) -> TlsClient {
        let sock = TcpStream::connect_timeout(&addr, WAIT).unwrap();
        TlsClient::over(sock, cert)
    }

    /// Starts TLS on a connected socket.
    pub fn over(sock: TcpStream, cert: &Path) -> TlsClient {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(cert).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        TlsClient {
            tls: rustls::StreamOwned::new(conn, sock),
            buf: Vec::new(),
        }
    }

    /// Connects with `first` (a line) queued before the handshake, so it leaves in the same
    /// write as the client's `Finished`, as weechat's first `CAP LS` does: the server reads
    /// it together with the end of the handshake.
    pub fn speaking_first(addr: SocketAddr, cert: &Path, first: &str) -> TlsClient {
        let mut c = TlsClient::connect(addr, cert);
        c.tls
            .conn
            .writer()
            .write_all(format!("{first}\r\n").as_bytes())
            .unwrap();
        let start = Instant::now();
        while c.tls.conn.is_handshaking() || c.tls.conn.wants_write() {
            assert!(start.elapsed() < WAIT, "the TLS handshake did not finish");
            match c.tls.conn.complete_io(&mut c.tls.sock) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("TLS handshake failed: {e}"),
            }
        }
        c
    }

    pub fn send(&mut self, line: &str) {
        self.tls
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        self.tls.flush().unwrap();
    }

    pub fn expect(&mut self, text: &str) -> String {
        let start = Instant::now();
        loop {
            if let Some(at) = super::find(&self.buf, text.as_bytes()) {
                let rest = self.buf.split_off(at + text.len());
                let got = std::mem::replace(&mut self.buf, rest);
                return String::from_utf8_lossy(&got).into_owned();
            }
            assert!(
                start.elapsed() < WAIT,
                "expected {text:?} over TLS, got {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            let mut chunk = [0u8; 4096];
            match self.tls.read(&mut chunk) {
                Ok(0) => panic!(
                    "TLS connection closed while expecting {text:?}; got {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("TLS read failed: {e}"),
            }
        }
    }
}
