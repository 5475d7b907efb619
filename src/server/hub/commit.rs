//! The message path through the hub: stage a batch's messages, commit them in one
//! transaction (one fsync at `--sync full`: group commit), then queue each line to its
//! recipients, made once and shared by all of them.

use super::clients::Mark;
use super::Hub;
use crate::server::outbox::Bytes;
use crate::server::protocol::chat_line;
use crate::server::socket::ConnId;
use crate::server::text;
use crate::server::wire::{self, Caps, Wire};
use crate::store::messages::{self, Kind, Message};
use crate::store::users::{self, User};

impl Hub {
    /// Stages a line from `conn`: public in `room` (`None`: the session's one room, as the
    /// hub knows it), or private to `to`.
    pub(super) fn stage(
        &mut self,
        conn: ConnId,
        room: Option<i64>,
        kind: Kind,
        to: Option<User>,
        body: String,
    ) {
        // A session the hub has cut (kicked, banned, removed, not reading) may still hand in
        // lines it had read: nothing from it is stored after its removal. A line for a room
        // the session has just left (IRC's PART) is dropped, as one after a QUIT would be.
        let Some(c) = self.clients.get_mut(&conn).filter(|c| !c.removed) else {
            return;
        };
        let room = match room {
            Some(room) if !c.rooms.contains(&room) => return,
            Some(room) => room,
            None => c
                .rooms
                .first()
                .copied()
                .unwrap_or(crate::store::rooms::LOBBY),
        };
        c.said_at = std::time::Instant::now();
        self.staged
            .push(Message::new(&c.user, to.as_ref(), Some(room), kind, body));
        self.staged_from.push(conn);
    }

    /// Commits the staged messages in one transaction, then queues them to their recipients.
    pub(super) fn commit_staged(&mut self) {
        if self.staged.is_empty() {
            return;
        }
        let mut msgs = std::mem::take(&mut self.staged);
        let mut from = std::mem::take(&mut self.staged_from);
        let err: Bytes = text::not_stored().into_bytes().into();
        // A batch still held means the database is away: these could only come after it.
        if !self.release_held() {
            for conn in from {
                self.queue(conn, &err);
            }
            return;
        }
        let started = std::time::Instant::now();
        let node = &self.node;
        let committed = self.db.run(|c| messages::commit_from(c, &mut msgs, node));
        let m = &crate::server::metrics::METRICS;
        m.commit_us.observe(started.elapsed().as_micros() as u64);
        m.batch.observe(msgs.len() as u64);
        match committed {
            Ok(()) => {}
            Err(e) if e.is_constraint() => {
                // One bad row (a message from an account purged from the shell) must not
                // sink the others: commit them one by one and keep those that store.
                log::warn!(
                    "batch of {} message(s) failed ({e}); retrying one by one",
                    msgs.len()
                );
                let (mut kept, mut kept_from) = (Vec::new(), Vec::new());
                for (m, conn) in msgs.into_iter().zip(from) {
                    let mut one = [m];
                    let node = &self.node;
                    match self.db.run(|c| messages::commit_from(c, &mut one, node)) {
                        Ok(()) => {
                            let [m] = one;
                            kept.push(m);
                            kept_from.push(conn);
                        }
                        Err(e) => {
                            let [m] = one;
                            // Its author's account was removed (a purge from the shell,
                            // or `clear-auth` before the hub hears of it): say so and cut
                            // them, rather than report a server failure.
                            if let Some(id) = m.author_id.filter(|&id| self.account_gone(id)) {
                                log::info!(
                                    "a message from {}: the account was removed",
                                    m.author_name
                                );
                                self.cut_removed_accounts(&[id]);
                                continue;
                            }
                            log::error!("could not store a message from {}: {e}", m.author_name);
                            self.queue(conn, &err);
                        }
                    }
                }
                (msgs, from) = (kept, kept_from);
            }
            Err(e) => {
                // The database itself failed (busy past the timeout, disk full, or away: a
                // restart, a failover): retrying row by row would only multiply the wait.
                // Nothing was stored; say so to the senders. A lost connection was said once
                // (`Dedicated`), and the next batch gets a new one.
                if !matches!(e, crate::error::Error::DbDown) {
                    log::error!("could not store {} message(s): {e}", msgs.len());
                }
                for conn in from {
                    self.queue(conn, &err);
                }
                return;
            }
        }
        m.messages
            .fetch_add(msgs.len() as u64, std::sync::atomic::Ordering::Relaxed);
        // Several nodes on one database: what the others committed before this batch (the
        // commits are serialized, so all of it is in) goes out first, in id order.
        // If that cannot be read now (the database went away just after this commit), the
        // batch waits for it: delivered now, it would move the watermark past lines this
        // node's clients would then never see.
        if let Some(first) = msgs.iter().map(|m| m.id).min() {
            if !self.catch_up(Some(first)) {
                self.held = Some((msgs, from));
                return;
            }
        }
        self.deliver(&msgs, Some(&from));
    }

    /// Whether the account `id` no longer exists (false if that cannot be read now: the
    /// failure is then reported as what it is).
    fn account_gone(&mut self, id: i64) -> bool {
        self.db
            .run(|c| users::missing(c, &[id]))
            .is_ok_and(|gone| !gone.is_empty())
    }

    /// Queues committed messages (in id order) to their recipients and moves the watermark
    /// past them. `from`: the connection each came from, for this node's own messages (its
    /// plain lines are not sent back to it; the sender of a private line to someone absent
    /// is told); `None` for messages other nodes committed.
    pub(super) fn deliver(&mut self, msgs: &[Message], from: Option<&[ConnId]>) {
        let m = &crate::server::metrics::METRICS;
        if let Some(last) = msgs.iter().map(|m| m.id).max() {
            self.last_id = self.last_id.max(last);
        }
        // In order: each run of public lines goes out as one shared buffer (every client
        // gets slices of it); each private line to its two parties.
        let mut i = 0;
        while i < msgs.len() {
            if let Some((to, _)) = &msgs[i].recipient {
                let line: Bytes = chat_line(&msgs[i], false).into_bytes().into();
                let mut conns: Vec<ConnId> = Vec::new();
                for user in [msgs[i].author_id, Some(*to)].into_iter().flatten() {
                    conns.extend(self.sessions_of(user));
                }
                conns.sort_unstable();
                conns.dedup();
                m.deliveries
                    .fetch_add(conns.len() as u64, std::sync::atomic::Ordering::Relaxed);
                for conn in conns {
                    // An IRC client shows what it sent itself, unless it asked for
                    // echo-message: then its own line comes back, with its tags.
                    let sender = from.is_some_and(|from| from[i] == conn);
                    let caps = self
                        .clients
                        .get(&conn)
                        .map_or(Caps::NONE, |c| c.wire.caps());
                    let irc = (!sender || caps.has(Caps::ECHO_MESSAGE))
                        .then(|| Bytes::from(wire::privmsg(&msgs[i], "", caps).into_bytes()));
                    if self.clients.get(&conn).is_some_and(|c| c.via.line_ids()) {
                        let head = crate::server::protocol::hidden_id(msgs[i].id);
                        self.queue_owned(conn, [head.as_bytes(), &line[..]].concat());
                        continue;
                    }
                    self.queue_as(conn, Some(&line), irc.as_ref());
                }
                if let Some(from) = from {
                    let (to, to_name) = (*to, msgs[i].recipient.as_ref().map(|r| r.1.clone()));
                    self.tell_if_absent(from[i], to, &to_name.unwrap_or_default());
                }
                i += 1;
                continue;
            }
            // A run of public lines: one shared buffer per room, in the run's order.
            let start = i;
            while msgs.get(i).is_some_and(|m| m.recipient.is_none()) {
                i += 1;
            }
            let mut rooms: Vec<i64> = Vec::new();
            for m in &msgs[start..i] {
                let room = m.room.as_ref().map_or(0, |r| r.0);
                if !rooms.contains(&room) {
                    rooms.push(room);
                }
            }
            for room in rooms {
                let (members, irc, formats) =
                    self.rooms.by_id.get(&room).map_or((0, 0, Vec::new()), |r| {
                        (r.members.len(), r.irc, r.formats.clone())
                    });
                for (format, _) in formats {
                    let from = from.map(|f| &f[start..i]);
                    self.send_irc_run((room, format), &msgs[start..i], from);
                }
                if members == irc {
                    continue;
                }
                let mut run = Vec::new();
                let mut ends = Vec::new();
                // A plain line goes to everyone in the room but the connection it came
                // from, unless that is a terminal whose user has /echo on (a log of the
                // session then reads right); a /me action to the sender too, as
                // confirmation that it was sent.
                let mut marks = Vec::new();
                let mut ids = Vec::new();
                for (k_msg, m) in msgs[start..i].iter().enumerate() {
                    if m.room.as_ref().map_or(0, |r| r.0) != room {
                        continue;
                    }
                    run.extend_from_slice(chat_line(m, false).as_bytes());
                    ids.push(m.id);
                    let k = ends.len();
                    if let (Some(from), Kind::Say) = (from, m.kind) {
                        let conn = from[start + k_msg];
                        if !self.echoes(conn) {
                            marks.push((conn, k, Mark::Skip));
                        }
                    }
                    for ring in self.to_ring(m.author_id, room, &m.body) {
                        marks.push((ring, k, Mark::Bell));
                    }
                    ends.push(run.len());
                }
                marks.sort_unstable();
                let run: Bytes = run.into();
                self.send_run((room, Wire::Line), (&run, &ids), &ends, &marks);
            }
        }
    }

    /// A run of public lines (`from`: where each came from) to `room`'s IRC clients that
    /// read `format`, made once for all of them: `PRIVMSG`s with the format's tags, each
    /// client's own lines left out (it showed them itself when it sent them) unless it asked
    /// for echo-message, no bell (an IRC client highlights its nick itself).
    fn send_irc_run(
        &mut self,
        (room, format): (i64, Wire),
        msgs: &[Message],
        from: Option<&[ConnId]>,
    ) {
        let mut run = Vec::new();
        let mut ends = Vec::new();
        let mut marks = Vec::new();
        let name = self.rooms.name(room).to_string();
        for (k_msg, m) in msgs.iter().enumerate() {
            if m.room.as_ref().map_or(0, |r| r.0) != room {
                continue;
            }
            run.extend_from_slice(wire::privmsg(m, &name, format.caps()).as_bytes());
            if let Some(&conn) = from.map(|f| &f[k_msg]) {
                let echo = self
                    .clients
                    .get(&conn)
                    .is_some_and(|c| c.wire.caps().has(Caps::ECHO_MESSAGE));
                if !echo {
                    marks.push((conn, ends.len(), Mark::Skip));
                }
            }
            ends.push(run.len());
        }
        marks.sort_unstable();
        let run: Bytes = run.into();
        self.send_run((room, format), (&run, &[]), &ends, &marks);
    }
}
