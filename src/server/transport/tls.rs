//! TLS (`--tls-addr`): the line protocol of telnet and `nc`, inside TLS (`rustls`), for
//! `openssl s_client`, `socat`, `gnutls-cli`, Mudlet and TinTin++.
//!
//! A TLS connection is served by two threads. Its worker runs the handshake (bounded by
//! `--login-timeout` and by shutdown), then creates a Unix socket pair, starts a *relay*
//! thread and runs the ordinary session on one end of the pair. The relay holds the TLS
//! state and moves bytes between the client's TCP socket (encrypted) and the other end of
//! the pair (plain). So the session and the hub see a stream socket as for every transport,
//! and the hub's rule holds unchanged: its send to the session's end never blocks, and a TLS
//! client that stops reading fills the pair's buffer (the relay stops taking from it when
//! rustls holds unsent bytes) until the hub cuts it at `--max-backlog`.
//!
//! Per TLS connection: three descriptors (the TCP socket and the pair), two threads.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::{end, listening, relayed_to, wait_pair, Accepted, Socket, Via, Way};
use crate::server::shared::Shared;
use crate::server::socket::ConnId;

/// How often a handshake in progress looks at its deadline and at shutdown.
const HANDSHAKE_STEP: Duration = Duration::from_millis(250);

/// Decrypted bytes the relay holds for the session at most before it stops reading the
/// client (the session reads lines slowly when paced; TCP then slows the client down).
const HOLD: usize = 64 * 1024;

/// Loads a PEM certificate chain and private key. The error is one line naming the file.
pub fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the TLS certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the TLS key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the TLS certificate and key do not fit together: {e}"))?;
    Ok(Arc::new(config))
}

/// `besedka gen-cert`: writes a self-signed certificate for `host` and its key into `dir`
/// (`cert.pem`, `key.pem`, the key readable by its owner only); returns both paths.
///
/// The certificate is named after `host` twice: its subject's common name (what a person
/// reading it sees; rcgen's default is "rcgen self signed cert") and its subject alternative
/// name (what clients check): an IP address SAN when `host` is an address, a DNS name
/// otherwise.
pub fn generate(host: &str, dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    let cannot = |e: rcgen::Error| format!("cannot make a certificate for {host:?}: {e}");
    // `new` makes the SAN, an IP address or a DNS name, from the string.
    let mut params = rcgen::CertificateParams::new(vec![host.to_string()]).map_err(cannot)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, host);
    let signing_key = rcgen::KeyPair::generate().map_err(cannot)?;
    let cert = params.self_signed(&signing_key).map_err(cannot)?;
    let made = rcgen::CertifiedKey { cert, signing_key };
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    // Both or neither: a pair half replaced would not fit together.
    let there: Vec<String> = [&cert, &key]
        .iter()
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !there.is_empty() {
        let verb = if there.len() == 1 { "exists" } else { "exist" };
        return Err(format!(
            "{} already {verb}: gen-cert never replaces a certificate or key; remove them \
             first, or pass another --out",
            there.join(" and ")
        ));
    }
    write_new(&key, made.signing_key.serialize_pem().as_bytes(), 0o600)?;
    write_new(&cert, made.cert.pem().as_bytes(), 0o644)?;
    Ok((cert, key))
}

/// Creates `path` (refusing to overwrite: a key is not replaced by accident) with `mode`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(bytes)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The listeners that take the certificate (`--tls-addr`, `--ircs-addr`): `--tls-cert` and
/// `--tls-key` need one of them. Declared here with `multiple`, or clap would make one
/// group of its own that refuses both at once.
pub(super) const TLS_LISTENER: &str = "tls_listener";

/// Its options.
#[derive(clap::Args, Debug)]
#[group(skip)]
#[command(group(clap::ArgGroup::new(TLS_LISTENER).multiple(true)))]
pub struct Options {
    /// Also listen for TLS connections here (the telnet/nc protocol inside TLS), e.g.
    /// 0.0.0.0:7443; needs --tls-cert and --tls-key.
    #[arg(long, requires_all = ["tls_cert", "tls_key"], group = TLS_LISTENER)]
    pub tls_addr: Option<String>,
    /// The TLS certificate chain (PEM), for --tls-addr and --ircs-addr; `besedka gen-cert`
    /// makes a self-signed one.
    #[arg(long, requires = TLS_LISTENER)]
    pub tls_cert: Option<PathBuf>,
    /// The TLS private key (PEM).
    #[arg(long, requires = TLS_LISTENER)]
    pub tls_key: Option<PathBuf>,
}

impl Options {
    pub fn bind(
        &self,
        _state: &std::path::Path,
        _all: &crate::server::transport::Options,
    ) -> Result<Option<super::Bound>, String> {
        let (Some(addr), Some(cert), Some(key)) = (&self.tls_addr, &self.tls_cert, &self.tls_key)
        else {
            return Ok(None);
        };
        listening(addr, Arc::new(Tls::new(load(cert, key)?))).map(Some)
    }
}

/// A certificate in use: replaced whole by a reload, new handshakes take the new one,
/// sessions keep theirs. The TLS way's and IRC-in-TLS's.
pub(super) struct Certificate(std::sync::RwLock<Arc<ServerConfig>>);

impl Certificate {
    pub(super) fn new(config: Arc<ServerConfig>) -> Certificate {
        Certificate(std::sync::RwLock::new(config))
    }

    pub(super) fn get(&self) -> Arc<ServerConfig> {
        // Written only by a whole-value store, so a poisoned lock still holds a whole value.
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Rereads the certificate and key (renewed by ACME every 60–90 days): an unreadable or
    /// mismatched pair keeps the old one.
    pub(super) fn reload(&self, options: &super::Options) -> Result<(), String> {
        let (Some(cert), Some(key)) = (&options.tls.tls_cert, &options.tls.tls_key) else {
            return Ok(());
        };
        let new = load(cert, key)?;
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = new;
        Ok(())
    }
}

/// The TLS way in: its certificate.
pub struct Tls {
    certificate: Certificate,
    via: Via,
}

impl Tls {
    pub fn new(config: Arc<ServerConfig>) -> Tls {
        Tls {
            certificate: Certificate::new(config),
            via: Via::new("tls", true),
        }
    }
}

impl Way for Tls {
    fn via(&self) -> Via {
        self.via
    }

    /// Rereads the certificate and key: see [`Certificate::reload`].
    fn reload(&self, options: &super::Options) -> Result<(), String> {
        self.certificate.reload(options)
    }

    fn serve(&self, c: Accepted) {
        let _admitted = c.admitted; // released when the session ends, a panic included
        let (shared, conn, addr, via) = (&c.shared, c.conn, c.addr, self.via);
        serve(shared, conn, c.sock, addr, self.certificate.get(), via, |end| {
            crate::server::connection::run(shared, conn, end, addr, via, crate::server::connection::Known::Nobody)
        });
    }
}

/// Serves one TLS connection on a worker: handshake, relay, then `session` on the plain end
/// of the pair (the line protocol's, or IRC's for `--ircs-addr`).
pub(super) fn serve(
    shared: &Shared,
    conn: ConnId,
    tcp: Arc<Socket>,
    addr: SocketAddr,
    config: Arc<ServerConfig>,
    via: Via,
    session: impl FnOnce(Arc<Socket>),
) {
    let deadline = shared
        .door
        .deadline(conn)
        .unwrap_or_else(|| Instant::now() + shared.config.get().login_timeout);
    let tls = match handshake(shared, config, &tcp, deadline) {
        Ok(tls) => tls,
        Err(e) => {
            log::info!("{addr}: TLS handshake failed: {e}");
            return;
        }
    };
    relayed_to(
        shared,
        conn,
        addr,
        via,
        move |plain| relay(tls, tcp, plain),
        session,
    );
}

/// Runs the handshake in steps, so a client that never finishes it is cut at the login
/// deadline and a shutdown is not held up by it.
fn handshake(
    shared: &Shared,
    config: Arc<ServerConfig>,
    tcp: &Socket,
    deadline: Instant,
) -> io::Result<ServerConnection> {
    let mut tls = ServerConnection::new(config).map_err(io::Error::other)?;
    let mut sock = tcp;
    while tls.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || shared.cut.load(Ordering::SeqCst) {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let step = left.min(HANDSHAKE_STEP);
        tcp.set_read_timeout(Some(step))?;
        tcp.set_write_timeout(Some(step))?;
        match tls.complete_io(&mut sock) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(tls)
}

/// Moves bytes both ways until both sides are done: the client's TLS stream on `tcp`, the
/// session's plain bytes on `plain`. Never blocks on one side while the other has work.
fn relay(mut tls: ServerConnection, tcp: Arc<Socket>, plain: UnixStream) {
    let tcp = &*tcp;
    if tcp.set_nonblocking(true).is_err() || plain.set_nonblocking(true).is_err() {
        return end(tcp, &plain);
    }
    let mut to_session: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    let (mut client_done, mut session_done, mut told_session) = (false, false, false);
    // What came in the packet that ended the handshake (an IRC client sends its first line
    // right behind its Finished) is decrypted already: the socket will not say readable
    // for it again.
    client_done |= decrypted(&mut tls, &mut to_session, &mut buf);
    loop {
        // Out to the client: what rustls has encrypted.
        while tls.wants_write() {
            match tls.write_tls(&mut &*tcp) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return end(tcp, &plain),
            }
        }
        // In to the session: what the client sent, decrypted.
        while !to_session.is_empty() {
            match (&plain).write(&to_session) {
                Ok(n) => {
                    to_session.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return end(tcp, &plain),
            }
        }
        if client_done && to_session.is_empty() && !told_session {
            // The client is gone: the session reads its EOF and ends.
            let _ = plain.shutdown(Shutdown::Write);
            told_session = true;
        }
        if session_done && (!tls.wants_write() || client_done) {
            return end(tcp, &plain);
        }
        let want_client_in = !client_done && to_session.len() < HOLD;
        let want_session_in = !session_done && !tls.wants_write();
        if !wait_pair(
            tcp,
            &plain,
            [
                want_client_in,
                tls.wants_write(),
                want_session_in,
                !to_session.is_empty(),
            ],
        ) {
            return end(tcp, &plain);
        }
        if want_client_in {
            match tls.read_tls(&mut &*tcp) {
                Ok(0) => client_done = true,
                Ok(_) => match tls.process_new_packets() {
                    Ok(_) => client_done |= decrypted(&mut tls, &mut to_session, &mut buf),
                    Err(e) => {
                        log::debug!("TLS error from a client: {e}");
                        let _ = tls.write_tls(&mut &*tcp); // the alert, if it fits
                        return end(tcp, &plain);
                    }
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => client_done = true,
            }
        }
        if want_session_in {
            match (&plain).read(&mut buf) {
                Ok(0) => {
                    session_done = true;
                    tls.send_close_notify();
                }
                Ok(n) => {
                    if tls.writer().write_all(&buf[..n]).is_err() {
                        return end(tcp, &plain);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    session_done = true;
                    tls.send_close_notify();
                }
            }
        }
    }
}

/// Moves what rustls has decrypted to `to_session`; true if the client closed its side
/// (close_notify).
fn decrypted(tls: &mut ServerConnection, to_session: &mut Vec<u8>, buf: &mut [u8]) -> bool {
    loop {
        match tls.reader().read(buf) {
            Ok(0) => return true,
            Ok(n) => to_session.extend_from_slice(&buf[..n]),
            Err(_) => return false, // WouldBlock: nothing more decrypted yet
        }
    }
}
