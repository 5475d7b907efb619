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
