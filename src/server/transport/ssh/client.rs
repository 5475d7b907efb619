//! One SSH connection as russh calls it: authentication, the session channel, the shell.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use russh::keys::{HashAlg, PublicKey};
use russh::server::{Auth, Msg, Session};
use russh::{Channel, ChannelId, MethodKind, MethodSet};

use super::editor::Editor;
use super::relay::relay;
use crate::server::admit::Admitted;
use crate::server::connection::{self, Known};
use crate::server::pool::Pool;
use crate::server::session::Method;
use crate::server::shared::{lock, Shared};
use crate::server::socket::ConnId;
use crate::server::socket::{Socket, Via};
use crate::store::ssh_keys;
use crate::store::users::{self, name_key, User};

/// A refusal that leaves every way open: another key, the dialogue (keyboard-interactive),
/// or the password (again: OpenSSH asks three times, and the password lock counts every
/// wrong one).
fn retry() -> Auth {
    Auth::Reject {
        proceed_with_methods: Some(MethodSet::from(
            &[
                MethodKind::PublicKey,
                MethodKind::KeyboardInteractive,
                MethodKind::Password,
            ][..],
        )),
        partial_success: false,
    }
}

/// One SSH connection, as russh calls it.
pub(super) struct Client {
    pub(super) shared: Arc<Shared>,
    pub(super) pool: Pool,
    pub(super) addr: SocketAddr,
    pub(super) conn: ConnId,
    /// Counted against the limits until the connection and its session both end.
    pub(super) admitted: Arc<Admitted>,
    /// Who SSH authentication proved this is (a key, a password), if anyone.
    pub(super) user: Option<(User, Method)>,
    /// The user name the client let in with gave, unproven: the dialogue starts at it.
    pub(super) asked: Option<String>,
    /// The session channel, until the shell starts on it.
    pub(super) channel: Option<Channel<Msg>>,
    /// The shell started (the login deadline no longer applies here).
    pub(super) shell: Arc<AtomicBool>,
    pub(super) via: Via,
}

impl Client {
    /// Runs blocking work (the database, argon2) off the runtime's one thread.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Shared) -> T + Send + 'static,
    ) -> Option<T> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || f(&shared)).await.ok()
    }

    /// The account `user` if `key` is one of its keys, with the key's fingerprint.
    async fn key_owner(&self, user: &str, key: &PublicKey) -> Option<(User, String)> {
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        let wanted = name_key(&users::normalize(user));
        let owner = self
            .blocking(move |s| {
                s.store
                    .conn()
                    .and_then(|c| ssh_keys::owner(&c, &fingerprint))
                    .ok()
                    .flatten()
                    .filter(|u| name_key(&u.name) == wanted)
                    .map(|u| (u, fingerprint))
            })
            .await;
        owner.flatten()
    }

    /// Starts the chat on the channel: a session thread on one end of a socket pair, and the
    /// relay through the line editor on the other.
    fn start_shell(&mut self, channel: Channel<Msg>) -> io::Result<()> {
        let (theirs, ours) = UnixStream::pair()?;
        theirs.set_nonblocking(true)?;
        let theirs = tokio::net::UnixStream::from_std(theirs)?;
        let session_end = Arc::new(Socket::from(ours));
        lock(&self.shared.conns).insert(self.conn, session_end.clone());
        let known = match (self.user.clone(), self.asked.clone()) {
            (Some((user, method)), _) => Known::User(user, method),
            (None, Some(name)) => Known::Name(name),
            (None, None) => Known::Nobody,
        };
        let (shared, conn, addr, via) = (self.shared.clone(), self.conn, self.addr, self.via);
        let admitted = self.admitted.clone();
        self.pool.execute(move || {
            let _admitted = admitted;
            connection::run(&shared, conn, session_end.clone(), addr, via, known);
            let _ = session_end.shutdown(Shutdown::Both);
        })?;
        self.shell.store(true, Ordering::SeqCst);
        tokio::spawn(relay(
            channel,
            theirs,
            Editor::new(self.shared.config.get().max_line),
        ));
        Ok(())
    }
}

impl russh::server::Handler for Client {
    type Error = russh::Error;

    /// An account's name must prove itself (a key, or the dialogue after keyboard-
    /// interactive); any other name is let in at once, and offered to register.
    async fn auth_none(&mut self, user: &str) -> Result<Auth, Self::Error> {
        let name = users::normalize(user);
        let found = self
            .blocking(move |s| s.store.conn().and_then(|c| users::find(&c, &name)))
            .await;
        Ok(match found {
            Some(Ok(None)) => {
                self.asked = Some(user.to_string());
                Auth::Accept
            }
            _ => retry(),
        })
    }

    /// Keyboard-interactive (what OpenSSH tries after its keys, before a password): let in
    /// with no questions asked here; the session's dialogue asks them, starting at the name
    /// given (an account's password, or registering a free name). So a key that is not the
    /// account's falls back to the dialogue, as telnet would have it.
    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        _response: Option<russh::server::Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        self.asked = Some(user.to_string());
        Ok(Auth::Accept)
    }

    /// A key is worth a signature only if it belongs to the account asked for.
    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: russh::server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(match self.key_owner(user, offer.public_key).await {
            Some(_) => Auth::Accept,
            None => retry(),
        })
    }

    /// The client proved it holds the key: it logs in as the key's owner.
    async fn auth_publickey(
        &mut self,
        user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let Some((owner, fingerprint)) = self.key_owner(user, key.public_key).await else {
            return Ok(retry());
        };
        let addr = self.addr;
        self.blocking(move |s| {
            if let Err(e) = s
                .store
                .conn()
                .and_then(|c| ssh_keys::touch(&c, &fingerprint))
            {
                log::warn!("{addr}: cannot note the use of an SSH key: {e}");
            }
        })
        .await;
        self.user = Some((owner, Method::Key));
        Ok(Auth::Accept)
    }

    /// SSH password authentication: the account's argon2 hash and the same password lock.
    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let (name, password, ip) = (users::normalize(user), password.to_string(), self.addr.ip());
        let addr = self.addr;
        let checked = self
            .blocking(move |s| {
                let (user, hash) = match s.store.conn().and_then(|c| users::find(&c, &name)) {
                    Ok(Some(found)) => found,
                    Ok(None) => {
                        s.limits.failed(ip, None);
                        return None;
                    }
                    Err(e) => {
                        log::error!("{addr}: {e}");
                        return None;
                    }
                };
                let key = name_key(&user.name);
                if let Some((_, by)) = s.limits.login_locked(ip, Some(&key)) {
                    let why = crate::server::refusals::Why::Locked(by);
                    s.refusals.log(&s.config.get(), addr, why);
                    return None;
                }
                match s.hasher.verify(&password, &hash) {
                    Ok(true) => {
                        s.limits.succeeded(&key);
                        Some(user)
                    }
                    Ok(false) => {
                        s.limits.failed(ip, Some(&key));
                        log::info!("{addr}: failed SSH login for {}", user.name);
                        None
                    }
                    Err(e) => {
                        log::warn!("cannot check the password of {}: {e}", user.name);
                        None
                    }
                }
            })
            .await
            .flatten();
        Ok(match checked {
            Some(user) => {
                self.user = Some((user, Method::Password));
                Auth::Accept
            }
            None => retry(),
        })
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // One chat per connection.
        if self.channel.is_none() && !self.shell.load(Ordering::SeqCst) {
            self.channel = Some(channel);
            reply.accept().await;
        }
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _cols: u32,
        _rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn window_change_request(
        &mut self,
        _channel: ChannelId,
        _cols: u32,
        _rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        Ok(()) // lines are not wrapped by the server: nothing to redo
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(ch) = self.channel.take() else {
            return session.channel_failure(channel);
        };
        match self.start_shell(ch) {
            Ok(()) => session.channel_success(channel),
            Err(e) => {
                log::warn!("{}: cannot start an SSH session: {e}", self.addr);
                session.channel_failure(channel)
            }
        }
    }

    /// `ssh HOST command`: a chat has no commands to run; say how to connect, and end.
    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _command: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        let config = self.shared.config.get();
        let port = config.public_port.or(self.shared.ssh_port).unwrap_or(22);
        let login = crate::server::text::ssh_login(port, None, config.public_host.as_deref());
        let hint = crate::server::text::ssh_exec_refused(&login);
        session.data(channel, hint.into_bytes())?;
        session.exit_status_request(channel, 2)?;
        session.eof(channel)?;
        session.close(channel)
    }
}
