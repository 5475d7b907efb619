//! The hub's side of each client: queueing bytes, sending them when the socket can take
//! them, and cutting off clients that do not read.

use std::net::SocketAddr;
use std::time::Instant;

use polling::Event as Interest;

use super::Hub;
use crate::server::metrics::METRICS;
use crate::server::outbox::{Bytes, Flushed, Outbox};
use crate::server::socket::ConnId;
use crate::server::socket::Via;
use crate::server::text;
use crate::server::wire::{self, Wire};
use crate::store::users::User;

pub(super) struct Client {
    pub user: User,
    pub addr: SocketAddr,
    pub via: Via,
    /// What it reads (`via`'s wire, kept here for the hot paths).
    pub wire: Wire,
    pub out: Outbox,
    /// Queued to this batch already (listed in `Hub::dirty`).
    pub dirty: bool,
    /// Cut off; its session will send `Leave` soon. Nothing more is queued to it.
    pub dead: bool,
    /// Removed by moderation or for not reading: lines it had read but not yet handed in
    /// are not stored either. (At shutdown clients are `dead` but not `removed`: what they
    /// sent before the goodbye is still committed.)
    pub removed: bool,
    /// Its session is loading the history: queue, but send nothing until `Welcome`.
    pub held: bool,
    /// Its socket is registered with the poller (it has been stalled once); deleted at leave.
    pub polled: bool,
    /// The rooms its session is in: one for the line protocol, any number (capped by the
    /// IRC front) for IRC.
    pub rooms: Vec<i64>,
    /// Held for a move (`/join`): where in its queue the room's history goes
    /// ([`Outbox::mark`]).
    pub mark: Option<u64>,
    /// When it logged in, and when its user last said something in it (a line staged):
    /// `WHOIS`'s idle time (317).
    pub signon: std::time::SystemTime,
    pub said_at: Instant,
}

/// The terminal bell, rung in front of a line that mentions its reader.
const BELL: u8 = 0x07;

/// What a line of a run is, for one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Mark {
    /// The client's own plain line: not sent back to it.
    Skip,
    /// The line names the client's user: a bell in front.
    Bell,
}

/// Per-client marks on a run's lines: `(connection, line, mark)`, sorted.
pub(super) type Marks = [(ConnId, usize, Mark)];

/// Why a client is cut off.
enum Cut {
    Backlog,
    Stuck,
}

impl Hub {
    /// Queues the line protocol's text to one client, in its wire (an IRC client gets it as
    /// notices).
    pub(super) fn queue(&mut self, conn: ConnId, bytes: &Bytes) {
        let max = self.settings.max_backlog;
        if let Some(c) = self.clients.get_mut(&conn) {
            queue_text(conn, c, &mut self.dirty, max, bytes);
        }
    }

    /// Queues one client what it reads: `line` to a line-protocol client, `irc` (already
    /// IRC) to an IRC client; `None`, nothing.
    pub(super) fn queue_as(&mut self, conn: ConnId, line: Option<&Bytes>, irc: Option<&Bytes>) {
        let max = self.settings.max_backlog;
        if let Some(c) = self.clients.get_mut(&conn) {
            let bytes = match c.wire {
                Wire::Line => line,
                Wire::Irc(_) => irc,
            };
            if let Some(bytes) = bytes {
                queue_to(conn, c, &mut self.dirty, max, |out| out.queue(bytes));
            }
        }
    }

    /// Queues bytes meant for one client alone (its session's answers).
    pub(super) fn queue_owned(&mut self, conn: ConnId, bytes: Vec<u8>) {
        let max = self.settings.max_backlog;
        if let Some(c) = self.clients.get_mut(&conn) {
            queue_to(conn, c, &mut self.dirty, max, |out| out.queue_owned(bytes));
        }
    }

    /// Queues `bytes` to every live client but `skip`.
    pub(super) fn send_to_all(&mut self, bytes: &Bytes, skip: Option<ConnId>) {
        let max = self.settings.max_backlog;
        for (&id, c) in self.clients.iter_mut() {
            if Some(id) != skip {
                queue_text(id, c, &mut self.dirty, max, bytes);
            }
        }
    }

    /// Queues a run of public lines said in `room` (`run`, line `k` ending at `ends[k]`) to
    /// every live session in the room, with its `marks` (sorted by connection, then line): a
    /// sender's own lines are left out of its share, and a mentioned user's line gets a bell
    /// in front. One or a few slices of the same bytes per client, however many lines the
    /// run holds.
    /// The run is in `wire` and goes to the room's sessions that read it. `ids`: each
    /// line's id, for the web page's sessions (which get it in front of each line).
    pub(super) fn send_run(
        &mut self,
        (room, wire): (i64, Wire),
        (run, ids): (&Bytes, &[i64]),
        ends: &[usize],
        marks: &Marks,
    ) {
        let max = self.settings.max_backlog;
        let Some(r) = self.rooms.by_id.get(&room) else {
            return;
        };
        let dirty = &mut self.dirty;
        let readers = match wire {
            Wire::Line => r.members.len() - r.irc,
            Wire::Irc(_) => r
                .formats
                .iter()
                .find(|(w, _)| *w == wire)
                .map_or(0, |f| f.1),
        };
        // Every member gets every line, but its own plain lines (marked `Skip`).
        let skips = marks.iter().filter(|m| m.2 == Mark::Skip).count();
        let delivered = (readers * ends.len()).saturating_sub(skips);
        METRICS
            .deliveries
            .fetch_add(delivered as u64, std::sync::atomic::Ordering::Relaxed);
        if r.members.len() == self.clients.len() && r.irc == 0 {
            // Everyone is in this room (one room, or one busy room) and reads the line
            // protocol: no lookups.
            for (&id, c) in self.clients.iter_mut() {
                share(id, c, dirty, max, (run, ends, marks), ids);
            }
        } else {
            for &id in &r.members {
                if let Some(c) = self
                    .clients
                    .get_mut(&id)
                    .filter(|c| c.wire.for_runs() == wire)
                {
                    share(id, c, dirty, max, (run, ends, marks), ids);
                }
            }
        }
    }

    /// One send per client with something queued in this batch.
    pub(super) fn flush(&mut self) {
        for conn in std::mem::take(&mut self.dirty) {
            if let Some(c) = self.clients.get_mut(&conn) {
                c.dirty = false;
                if !c.held {
                    send(&self.poller, conn, c);
                }
            }
        }
    }

    /// The poller says `conn` can take more.
    pub(super) fn writable(&mut self, conn: ConnId) {
        if let Some(c) = self.clients.get_mut(&conn) {
            if !c.held {
                send(&self.poller, conn, c);
            }
        }
    }

    /// Cuts every client that has had bytes waiting and taken none for `--send-timeout`.
    /// Runs once a second: a scan of the clients, microseconds at ten thousand.
    pub(super) fn cut_stuck(&mut self) {
        let limit = self.settings.send_timeout;
        let now = Instant::now();
        for c in self.clients.values_mut() {
            if c.dead || c.held {
                continue;
            }
            if let Some(since) = c.out.stuck_since() {
                if now.duration_since(since) >= limit {
                    cut(c, Cut::Stuck, limit.as_secs() as usize);
                }
            }
        }
    }

    /// Sends each session that `which` selects its `text` and disconnects it; the sessions
    /// then send `Leave`. Returns how many sessions.
    pub(super) fn disconnect(
        &mut self,
        which: impl Fn(&User, SocketAddr) -> bool,
        text: impl Fn((&User, SocketAddr)) -> String,
    ) -> usize {
        let mut n = 0;
        let closing = self.closing;
        for c in self.clients.values_mut() {
            if !c.dead && which(&c.user, c.addr) {
                let text = text((&c.user, c.addr));
                let bytes = match c.wire {
                    Wire::Line => text,
                    // An IRC client is told why, then ERROR, as IRC servers close a link.
                    Wire::Irc(_) => wire::notices(&c.user.name, &text) + &wire::error(&text),
                };
                let _ = c.out.queue(&bytes.into_bytes().into());
                let _ = c.out.flush();
                if closing {
                    c.out.finish(); // the server closes the rest after a grace period
                } else {
                    c.out.close();
                }
                c.dead = true;
                c.removed = !closing;
                n += 1;
            }
        }
        n
    }

    /// The accounts of the clients still connected here, each once.
    pub(super) fn accounts(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .clients
            .values()
            .filter(|c| !c.dead)
            .map(|c| c.user.id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Disconnects every session of these removed accounts with the reason; returns how many.
    pub(super) fn cut_removed_accounts(&mut self, ids: &[i64]) -> usize {
        let text = text::account_removed();
        let n = self.disconnect(|u, _| ids.contains(&u.id), |_| text.clone());
        if n > 0 {
            log::info!("disconnected {n} session(s) of removed accounts");
        }
        n
    }

    /// Forgets a client's socket in the poller, before the socket can close.
    pub(super) fn unpoll(&self, c: &Client) {
        if c.polled {
            let _ = self.poller.delete(c.out.socket());
        }
    }
}

/// Queues the line protocol's `text` to one client in its wire.
fn queue_text(id: ConnId, c: &mut Client, dirty: &mut Vec<ConnId>, max: usize, text: &Bytes) {
    match c.wire {
        Wire::Line => queue_to(id, c, dirty, max, |out| out.queue(text)),
        Wire::Irc(_) => {
            let notices = wire::notices(&c.user.name, &String::from_utf8_lossy(text));
            queue_to(id, c, dirty, max, |out| {
                out.queue_owned(notices.into_bytes())
            })
        }
    }
}

/// Queues one client its share of a run (see [`Hub::send_run`]).
fn share(
    id: ConnId,
    c: &mut Client,
    dirty: &mut Vec<ConnId>,
    max: usize,
    (run, ends, marks): (&Bytes, &[usize], &Marks),
    ids: &[i64],
) {
    if c.via.line_ids() && ids.len() == ends.len() {
        return share_with_ids(id, c, dirty, max, (run, ends, marks), ids);
    }
    slices(id, run.len(), ends, marks, |slice| match slice {
        Slice::Range(start, end) => {
            queue_to(id, c, dirty, max, |out| out.queue_range(run, start, end))
        }
        Slice::Bell => queue_to(id, c, dirty, max, |out| out.queue_owned(vec![BELL])),
    });
}

/// [`share`] for the web page: line by line, each with its id in front, hidden
/// ([`crate::server::protocol::hidden_id`]), then the bell if it is marked for one.
fn share_with_ids(
    id: ConnId,
    c: &mut Client,
    dirty: &mut Vec<ConnId>,
    max: usize,
    (run, ends, marks): (&Bytes, &[usize], &Marks),
    ids: &[i64],
) {
    let first = marks.partition_point(|&(conn, _, _)| conn < id);
    let own: Vec<_> = marks[first..]
        .iter()
        .take_while(|&&(conn, _, _)| conn == id)
        .collect();
    let mut start = 0;
    for (k, &end) in ends.iter().enumerate() {
        let has = |m: Mark| own.iter().any(|&&(_, line, mark)| line == k && mark == m);
        if !has(Mark::Skip) {
            let mut head = crate::server::protocol::hidden_id(ids[k]).into_bytes();
            if has(Mark::Bell) {
                head.push(BELL);
            }
            queue_to(id, c, dirty, max, |out| out.queue_owned(head));
            queue_to(id, c, dirty, max, |out| out.queue_range(run, start, end));
        }
        start = end;
    }
}

/// A piece of one client's share of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slice {
    /// The run's bytes `start..end`.
    Range(usize, usize),
    /// The terminal bell, in front of the line that follows.
    Bell,
}

/// Client `id`'s share of a run of `len` bytes (line `k` ending at `ends[k]`), as `put` gets
/// it in order: the run but its lines marked `Skip` for `id`, a bell before those marked
/// `Bell`; the fewest slices that make it (one, for a client with no marks).
fn slices(id: ConnId, len: usize, ends: &[usize], marks: &Marks, mut put: impl FnMut(Slice)) {
    let first = marks.partition_point(|&(conn, _, _)| conn < id);
    let own = marks[first..]
        .iter()
        .take_while(|&&(conn, _, _)| conn == id);
    let mut start = 0;
    for &(_, k, mark) in own {
        let line_start = if k == 0 { 0 } else { ends[k - 1] };
        if line_start > start {
            put(Slice::Range(start, line_start));
        }
        start = match mark {
            Mark::Skip => ends[k],
            Mark::Bell => {
                put(Slice::Bell);
                line_start
            }
        };
    }
    if start < len {
        put(Slice::Range(start, len));
    }
}

fn queue_to(
    id: ConnId,
    c: &mut Client,
    dirty: &mut Vec<ConnId>,
    max: usize,
    put: impl FnOnce(&mut Outbox) -> Flushed,
) {
    if c.dead {
        return;
    }
    match put(&mut c.out) {
        Flushed::Overflow => cut(c, Cut::Backlog, max),
        Flushed::Failed(kind) => gone(c, kind),
        Flushed::All | Flushed::Partly => {
            if !c.dirty {
                c.dirty = true;
                dirty.push(id);
            }
        }
    }
}

/// Sends what the client can take; registers it for writability if it cannot take all.
fn send(poller: &polling::Poller, conn: ConnId, c: &mut Client) {
    if c.dead {
        return;
    }
    match c.out.flush() {
        Flushed::All => {}
        // (A flush never says Overflow: that is decided when bytes are queued.)
        Flushed::Partly | Flushed::Overflow => {
            let interest = Interest::writable(conn as usize);
            let armed = if c.polled {
                poller.modify(c.out.socket(), interest)
            } else {
                // SAFETY: the socket is deleted from the poller (`Hub::unpoll`) before the
                // hub drops its `Arc` to it, so it is never closed while registered.
                unsafe { poller.add(c.out.socket(), interest) }
            };
            match armed {
                Ok(()) => c.polled = true,
                Err(e) => log::warn!("cannot watch {} ({}): {e}", c.user.name, c.addr),
            }
        }
        Flushed::Failed(kind) => gone(c, kind),
    }
}

fn gone(c: &mut Client, kind: std::io::ErrorKind) {
    log::debug!("send to {} ({}) failed: {kind:?}", c.user.name, c.addr);
    c.dead = true;
    c.out.close();
}

fn cut(c: &mut Client, why: Cut, bound: usize) {
    crate::server::metrics::inc(match why {
        Cut::Backlog => &METRICS.cut[0],
        Cut::Stuck => &METRICS.cut[1],
    });
    match why {
        Cut::Backlog => log::warn!(
            "disconnecting {} ({}): not reading, backlog over {bound} bytes",
            c.user.name,
            c.addr
        ),
        Cut::Stuck => log::warn!(
            "disconnecting {} ({}): not reading, nothing taken for {bound} s",
            c.user.name,
            c.addr
        ),
    }
    c.dead = true;
    c.removed = true;
    c.out.close();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Client `id`'s share of a run of lines ending at `ends`.
    fn share_of(id: ConnId, ends: &[usize], marks: &Marks) -> Vec<Slice> {
        let mut out = Vec::new();
        slices(id, *ends.last().unwrap(), ends, marks, |s| out.push(s));
        out
    }

    #[test]
    fn a_client_without_marks_gets_the_whole_run_in_one_slice() {
        let marks = [(1, 0, Mark::Skip), (3, 2, Mark::Bell)];
        assert_eq!(share_of(2, &[10, 25, 40], &marks), [Slice::Range(0, 40)]);
        assert_eq!(share_of(9, &[10, 25, 40], &[]), [Slice::Range(0, 40)]);
    }

    #[test]
    fn a_senders_own_lines_are_left_out_of_its_share() {
        // Lines 0..10, 10..25, 25..40, 40..50: the sender said the first and the third.
        let ends = [10, 25, 40, 50];
        let marks = [(7, 0, Mark::Skip), (7, 2, Mark::Skip)];
        assert_eq!(
            share_of(7, &ends, &marks),
            [Slice::Range(10, 25), Slice::Range(40, 50)]
        );
        // Its only line: nothing at all.
        assert_eq!(share_of(7, &[10], &[(7, 0, Mark::Skip)]), []);
        // Its last line: the run up to it.
        assert_eq!(
            share_of(7, &ends, &[(7, 3, Mark::Skip)]),
            [Slice::Range(0, 40)]
        );
    }

    #[test]
    fn a_mentioned_client_gets_a_bell_right_before_the_line_naming_it() {
        let ends = [10, 25, 40];
        assert_eq!(
            share_of(4, &ends, &[(4, 1, Mark::Bell)]),
            [Slice::Range(0, 10), Slice::Bell, Slice::Range(10, 40)]
        );
        assert_eq!(
            share_of(4, &ends, &[(4, 0, Mark::Bell)]),
            [Slice::Bell, Slice::Range(0, 40)]
        );
        // Its own line skipped, another ringing it, among other clients' marks (sorted).
        let marks = [
            (3, 0, Mark::Bell),
            (4, 0, Mark::Skip),
            (4, 2, Mark::Bell),
            (5, 1, Mark::Skip),
        ];
        assert_eq!(
            share_of(4, &ends, &marks),
            [Slice::Range(10, 25), Slice::Bell, Slice::Range(25, 40)]
        );
    }
}
