//! The hub's batch on a real SQLite database in a temp dir, with each client on a real
//! loopback socket: events go in through [`Hub::handle`], the batch ends as in [`Hub::run`]
//! (a point of order, then one send per client), and each client's socket is read back.
//! Sends to loopback are in the peer's buffer when they return, so the reads need no waits.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;

use super::*;
use crate::server::socket::Via;
use crate::store::rooms::{self, Room};
use crate::store::{users, Store};

/// A hub on a fresh database, and what it takes to play its sessions.
struct Fixture {
    hub: Hub,
    store: Store,
    next: ConnId,
    _dir: tempfile::TempDir,
}

/// A session as the fixture plays it: its connection, user, the client's end, and where the
/// hub answers its `Join` with the watermark.
struct Session {
    conn: ConnId,
    user: User,
    client: TcpStream,
    watermark: mpsc::Receiver<(i64, bool)>,
    /// The room it says its lines in.
    room: std::cell::Cell<i64>,
}

impl Session {
    /// Everything sent to this client so far.
    fn read(&mut self) -> String {
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match self.client.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("read: {e}"),
            }
        }
        // Times of day are the clock's: `[12:34:56] alice: hi` reads `alice: hi`.
        String::from_utf8(got)
            .unwrap()
            .split_inclusive("\r\n")
            .map(
                |l| match l.strip_prefix('[').and_then(|l| l.split_once("] ")) {
                    Some((_, rest)) => rest.to_string(),
                    None => l.to_string(),
                },
            )
            .collect()
    }

    fn chat(&self, body: &str) -> Event {
        Event::Chat {
            conn: self.conn,
            room: self.room.get(),
            kind: Kind::Say,
            body: body.to_string(),
        }
    }

    fn private(&self, to: &Session, body: &str) -> Event {
        Event::Private {
            conn: self.conn,
            to: to.user.clone(),
            body: body.to_string(),
        }
    }

    fn leave(&self) -> Event {
        Event::Leave {
            conn: self.conn,
            why: None,
        }
    }
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("besedka.db")).unwrap();
        let (_tx, inbox) = channel().unwrap();
        let settings = Settings {
            max_backlog: 1 << 20,
            send_timeout: Duration::from_secs(30),
            addr: "127.0.0.1:0".into(),
            node: "test".into(),
        };
        let hub = Hub::new(
            store.clone(),
            inbox,
            Arc::new(Stats::default()),
            Arc::new(Moderation::default()),
            settings,
        )
        .unwrap();
        Fixture {
            hub,
            store,
            next: 1,
            _dir: dir,
        }
    }

    fn room(&self, name: &str) -> Room {
        let c = self.store.conn().unwrap();
        if let Some(room) = rooms::find(&c, name).unwrap() {
            return room;
        }
        let founder = users::create(&c, name, "not a hash").unwrap().unwrap();
        match rooms::open(&c, name, founder.id, 100, 100).unwrap() {
            rooms::Opened::Created(room) | rooms::Opened::Found(room) => room,
            _ => panic!("cannot open {name}"),
        }
    }

    /// A new account (or the existing one) and a session of it in #lobby, logged in but not
    /// yet let through: its `Join` (to hand the hub in a batch) and the watermark the hub
    /// answers.
    fn connect(&mut self, name: &str) -> (Session, Event) {
        let lobby = self.room("#lobby");
        self.connect_in(name, &lobby)
    }

    /// [`Fixture::connect`], the session starting in `room`.
    fn connect_in(&mut self, name: &str, room: &Room) -> (Session, Event) {
        let c = self.store.conn().unwrap();
        let user = match users::create(&c, name, "not a hash").unwrap() {
            Some(user) => user,
            None => users::find(&c, name).unwrap().unwrap().0,
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.set_nonblocking(true).unwrap();
        let (server, addr) = listener.accept().unwrap();
        let (conn, (tx, rx)) = (self.next, mpsc::channel());
        self.next += 1;
        let join = Event::Join {
            conn,
            user: user.clone(),
            addr,
            sock: Arc::new(server.into()),
            via: Via::new("telnet", true),
            wire: crate::server::wire::Wire::Line,
            bell: false,
            echo: false,
            room: Box::new(room.clone()),
            watermark: tx,
        };
        let session = Session {
            conn,
            user,
            client,
            watermark: rx,
            room: std::cell::Cell::new(room.id),
        };
        (session, join)
    }

    /// A session joined and welcomed (its history empty) in a batch of its own.
    fn login(&mut self, name: &str) -> Session {
        let (mut s, join) = self.connect(name);
        self.batch(vec![join, self.welcome(&s)]);
        s.read();
        s
    }

    fn welcome(&self, s: &Session) -> Event {
        Event::Welcome {
            conn: s.conn,
            bytes: Vec::new(),
            keep: true,
        }
    }

    /// One batch, as [`Hub::run`] takes it: every event, a point of order, one send each.
    fn batch(&mut self, events: Vec<Event>) {
        for ev in events {
            assert!(!self.hub.handle(ev), "a batch without Stop");
        }
        self.hub.settle();
        self.hub.flush();
    }

    /// The stored messages: (id, author, body), in id order.
    fn stored(&self) -> Vec<(i64, String, String)> {
        let c = self.store.conn().unwrap();
        messages::recent(&c, 100)
            .unwrap()
            .into_iter()
            .map(|m| (m.id, m.author_name, m.body))
            .collect()
    }
}

#[test]
fn a_batch_is_committed_in_one_order_and_each_line_goes_to_its_readers() {
    let mut f = Fixture::new();
    let (mut alice, mut bob, mut carol) = (f.login("alice"), f.login("bob"), f.login("carol"));
    alice.read();
    bob.read();
    f.batch(vec![
        alice.chat("one"),
        bob.chat("two"),
        alice.private(&carol, "psst"),
        carol.chat("three"),
        alice.chat("four"),
    ]);
    let stored = f.stored();
    let bodies: Vec<&str> = stored.iter().map(|m| m.2.as_str()).collect();
    assert_eq!(bodies, ["one", "two", "psst", "three", "four"]);
    assert!(stored.windows(2).all(|w| w[0].0 < w[1].0), "{stored:?}");
    // Each sees the batch in that order: not their own plain lines, a private line only if
    // theirs (a run of public lines ends at it and a new one starts after it).
    assert_eq!(
        alice.read(),
        "bob: two\r\nalice -> carol: psst\r\ncarol: three\r\n"
    );
    assert_eq!(bob.read(), "alice: one\r\ncarol: three\r\nalice: four\r\n");
    assert_eq!(
        carol.read(),
        "alice: one\r\nbob: two\r\nalice -> carol: psst\r\nalice: four\r\n"
    );
}

#[test]
fn the_watermark_is_the_last_committed_id_and_a_new_session_is_held_until_its_welcome() {
    let mut f = Fixture::new();
    let mut alice = f.login("alice");
    f.batch(vec![alice.chat("before")]);
    let last = f.stored().last().unwrap().0;
    assert_eq!(f.hub.last_id, last);
    // Bob joins: he is answered the watermark, and whether he was online already.
    let (mut bob, join) = f.connect("bob");
    f.batch(vec![join]);
    assert_eq!(bob.watermark.try_recv().unwrap(), (last, false));
    alice.read();
    // Lines committed after the watermark are queued to him, not sent: his history (up to
    // the watermark, loaded by his session) goes first when it comes.
    f.batch(vec![alice.chat("after")]);
    assert_eq!(f.hub.last_id, f.stored().last().unwrap().0);
    assert!(f.hub.last_id > last);
    assert_eq!(bob.read(), "", "held until the welcome");
    f.batch(vec![Event::Welcome {
        conn: bob.conn,
        bytes: b"[history] alice: before\r\n".to_vec(),
        keep: true,
    }]);
    assert_eq!(
        bob.read(),
        "alice: before\r\n* In #lobby (2): alice, bob\r\nalice: after\r\n"
    );
    // A second session of his: online already, and the watermark has moved.
    let (again, join) = f.connect("bob");
    f.batch(vec![join]);
    assert_eq!(again.watermark.try_recv().unwrap(), (f.hub.last_id, true));
}

#[test]
fn lines_of_a_client_the_hub_has_cut_are_not_staged() {
    let mut f = Fixture::new();
    let (mut alice, bob) = (f.login("alice"), f.login("bob"));
    alice.read();
    f.hub.clients.get_mut(&bob.conn).unwrap().removed = true;
    f.batch(vec![bob.chat("from a cut client"), alice.chat("kept")]);
    let bodies: Vec<String> = f.stored().into_iter().map(|m| m.2).collect();
    assert_eq!(bodies, ["kept"]);
    assert_eq!(alice.read(), "");
}

#[test]
fn a_room_hears_only_its_own_lines_in_order() {
    let mut f = Fixture::new();
    let tea = f.room("#tea");
    let (mut alice, mut bob, mut dave) = (f.login("alice"), f.login("bob"), f.login("dave"));
    let (mut carol, join) = f.connect_in("carol", &tea);
    f.batch(vec![join, f.welcome(&carol)]);
    assert_eq!(carol.read(), "* In #tea (1): carol\r\n");
    // Alice moves to #tea: told apart to the room she left and the one she came into. Held
    // until her session hands in #tea's history, which goes after what was queued to her
    // before the move and before what came after it.
    bob.read();
    dave.read();
    alice.read();
    let (tx, watermark) = mpsc::channel();
    f.batch(vec![
        bob.chat("before the move"),
        Event::Move {
            conn: alice.conn,
            room: Box::new(tea.clone()),
            keep: false,
            watermark: tx,
        },
    ]);
    alice.room.set(tea.id);
    assert_eq!(watermark.try_recv().unwrap(), f.hub.last_id);
    assert_eq!(
        dave.read(),
        "bob: before the move\r\n* alice left for #tea\r\n"
    );
    assert_eq!(carol.read(), "* alice joined #tea\r\n");
    f.batch(vec![carol.chat("while she loads")]);
    assert_eq!(alice.read(), "", "held");
    f.batch(vec![Event::Welcome {
        conn: alice.conn,
        bytes: b"[history] carol: earlier\r\n".to_vec(),
        keep: true,
    }]);
    assert_eq!(
        alice.read(),
        "bob: before the move\r\ncarol: earlier\r\n* In #tea (2): alice, carol\r\n\
         carol: while she loads\r\n"
    );
    bob.read();
    carol.read();
    f.batch(vec![
        alice.chat("t1"),
        bob.chat("l1"),
        carol.chat("t2"),
        dave.chat("l2"),
        alice.chat("t3"),
    ]);
    assert_eq!(alice.read(), "carol: t2\r\n");
    assert_eq!(carol.read(), "alice: t1\r\nalice: t3\r\n");
    assert_eq!(bob.read(), "dave: l2\r\n");
    assert_eq!(dave.read(), "bob: l1\r\n");
}

#[test]
fn more_than_three_joins_or_leaves_in_a_batch_are_told_in_one_line() {
    let mut f = Fixture::new();
    let mut watcher = f.login("watcher");
    // Three arrivals: a line each, in order.
    let mut sessions: Vec<Session> = Vec::new();
    let mut events = Vec::new();
    for name in ["a1", "a2", "a3"] {
        let (s, join) = f.connect(name);
        events.push(join);
        events.push(f.welcome(&s));
        sessions.push(s);
    }
    f.batch(events);
    assert_eq!(
        watcher.read(),
        "* a1 joined\r\n* a2 joined\r\n* a3 joined\r\n"
    );
    // A newcomer is not told of its own arrival; the room's line ends the batch's notices.
    assert_eq!(
        sessions[0].read(),
        "* a2 joined\r\n* a3 joined\r\n* In #lobby (4): a1, a2, a3, watcher\r\n"
    );
    // Four: one line.
    let mut events = Vec::new();
    for name in ["b1", "b2", "b3", "b4"] {
        let (s, join) = f.connect(name);
        events.push(join);
        events.push(f.welcome(&s));
        sessions.push(s);
    }
    f.batch(events);
    assert_eq!(watcher.read(), "* 4 people joined\r\n");
    // Comings and goings together: counted apart.
    let (s, join) = f.connect("c1");
    let events = vec![
        sessions[0].leave(),
        sessions[1].leave(),
        sessions[2].leave(),
        join,
        f.welcome(&s),
    ];
    f.batch(events);
    assert_eq!(watcher.read(), "* 1 people joined, 3 left\r\n");
    // A second session of someone online is no arrival; its end is no departure.
    let (again, join) = f.connect("b1");
    f.batch(vec![join, f.welcome(&again)]);
    f.batch(vec![again.leave()]);
    assert_eq!(watcher.read(), "");
}
