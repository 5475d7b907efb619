#!/usr/bin/env python3
"""Usage: python3 scripts/history-growth.py [--sizes 10000,1000000,5000000] [--runs 7]
                                          [--dir /tmp] [--keep] BIN [BIN...]

What history costs as it grows (issue 21): for each size, fills a SQLite database with that
many messages (one transaction, one prepared insert, the search index built at the end), then
starts each BIN's `serve` on it in turn, alternating, RUNS times, and times on each:

  login    a token login with its replay (connect, `/token T`, until the room's online line);
  common   `/search lorem` (a word in about a third of the lines);
  rare     `/search zyzzyva` (a word in one line in 100,000);
  filtered `/search lorem from:u7 in:#room3` (skipped by a BIN that answers `! Not a search
           query` to the filters, as builds from before them do).

Prints the median (and min-max) of each in ms, per BIN and size. Each timed request is done
once untimed first (the page cache is warm, as on a running server). The database is made by
the first BIN (its schema) and removed at the end unless --keep; every BIN must be able to open
it (migrations are forward-only: give the older build first).

The history: 2% of lines private (between 1,000 users), the rest public in 10 rooms, one line a
second of simulated time; the measured user `alice` has 300 private lines among them and a
last visit 50 lines before the end."""
import hashlib, os, random, socket, sqlite3, statistics, subprocess, sys, time

WORDS = ("ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut "
         "labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco "
         "laboris nisi aliquip ex ea commodo consequat duis aute irure in reprehenderit voluptate "
         "velit esse cillum fugiat nulla pariatur excepteur sint occaecat cupidatat non proident "
         "sunt culpa qui officia deserunt mollit anim id est laborum").split()
TOKEN = "growth-token-for-alice-0123456789"
USERS, ROOMS = 1000, 10


def args():
    a = sys.argv[1:]
    opts = {"sizes": "10000,1000000,5000000", "runs": "7", "dir": "/tmp", "keep": False}
    bins = []
    while a:
        x = a.pop(0)
        if x == "--keep":
            opts["keep"] = True
        elif x.startswith("--") and x[2:] in opts:
            opts[x[2:]] = a.pop(0)
        elif x.startswith("-"):
            sys.exit(__doc__)
        else:
            bins.append(os.path.abspath(x))
    if not bins:
        sys.exit(__doc__)
    return [int(s) for s in opts["sizes"].split(",")], int(opts["runs"]), opts["dir"], opts["keep"], bins


def start(binary, db):
    p = subprocess.Popen([binary, "serve", "--addr", "127.0.0.1:0", "--db", db, "--no-console",
                          "--allow-ip", "127.0.0.0/8", "--max-rate", "100000", "--log-level", "warn"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = p.stdout.readline().decode()
    if "listening on" not in line:
        p.kill()
        sys.exit(f"{binary} did not start: {line!r}")
    return p, int(line.split()[3].split(":")[1])


def stop(p):
    p.terminate()
    p.wait(30)


def fill(binary, db, n):
    for f in (db, db + "-wal", db + "-shm"):
        if os.path.exists(f):
            os.remove(f)
    p, _ = start(binary, db)  # the schema, as that build makes it
    stop(p)
    rnd = random.Random(21)
    c = sqlite3.connect(db, isolation_level=None)
    c.execute("PRAGMA synchronous = OFF")
    c.execute("BEGIN")
    phc = "$argon2id$v=19$m=19456,t=2,p=1$bm90LWEtcmVhbC1zYWx0$bm90LWEtcmVhbC1oYXNoLW5vdC1hLXJlYWwtaGFzaA"
    c.executemany("INSERT INTO users (id, name, name_key, password_hash, created_at, name_skeleton) "
                  "VALUES (?, ?, ?, ?, '2025-01-01T00:00:00Z', ?)",
                  [(i, n_, n_, phc, n_) for i, n_ in ((i, "alice" if i == 1 else f"u{i}")
                                                     for i in range(1, USERS + 1))])
    c.executemany("INSERT INTO rooms (id, name, name_key, created_at) VALUES (?, ?, ?, '2025-01-01T00:00:00Z')",
                  [(r, f"#room{r}", f"#room{r}") for r in range(2, ROOMS + 1)])
    t0 = 1735689600  # 2025-01-01T00:00:00Z
    alice_every = max(1, n // 300)

    def rows():
        for i in range(1, n + 1):
            words = rnd.choices(WORDS, k=8)
            if rnd.random() < 0.35:
                words[rnd.randrange(8)] = "lorem"
            if i % 100_000 == 50_000:
                words[0] = "zyzzyva"
            author = rnd.randrange(1, USERS + 1)
            if i % alice_every == 0:
                recipient, room = 1, None
            elif rnd.random() < 0.02:
                recipient, room = rnd.randrange(2, USERS + 1), None
            else:
                recipient, room = None, rnd.randrange(1, ROOMS + 1)
            at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + i))
            yield (i, at, author, f"u{author}" if author != 1 else "alice", recipient, room, " ".join(words))

    t = time.time()
    c.executemany("INSERT INTO messages (id, created_at, author_id, author_name, recipient_id, room_id, body) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)", rows())
    c.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")
    c.execute("UPDATE fts_state SET last_id = ?", (n,))
    c.execute("UPDATE users SET seen_id = ? WHERE id = 1", (max(0, n - 50),))
    c.execute("INSERT INTO tokens (user_id, token_hash, created_at, last_used_at, expires_at) "
              "VALUES (1, ?, '2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z', '2999-01-01T00:00:00Z')",
              (hashlib.sha256(TOKEN.encode()).hexdigest(),))
    c.execute("COMMIT")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    print(f"# filled {n} messages in {time.time() - t:.0f} s ({os.path.getsize(db) >> 20} MiB)", flush=True)


def read_until(s, buf, marker):
    """What came up to `marker` (included), and what came after it."""
    while marker not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError(f"closed before {marker!r}: {buf[-300:]!r}")
        buf += chunk
    end = buf.index(marker) + len(marker)
    return buf[:end], buf[end:]


def login(port):
    t = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"/token {TOKEN}\r\n".encode())
    _, rest = read_until(s, b"", b"* In #lobby (")
    read_until(s, rest, b"\n")
    return time.perf_counter() - t, s


def search(s, query):
    # The session answers in order: the search's lines, then this unknown command's error.
    t = time.perf_counter()
    s.sendall(f"/search {query}\r\n/growth-end\r\n".encode())
    buf, _ = read_until(s, b"", b"/growth-end")
    if b"! Not a search query" in buf or b"! Usage" in buf:
        return None
    return time.perf_counter() - t


def measure(binary, db, runs):
    p, port = start(binary, db)
    try:
        out = {"login": [], "common": [], "rare": [], "filtered": []}
        for i in range(runs + 1):  # the first round warms the cache and is not counted
            took, s = login(port)
            got = {"login": took,
                   "common": search(s, "lorem"),
                   "rare": search(s, "zyzzyva"),
                   "filtered": search(s, "lorem from:u7 in:#room3")}
            s.close()
            if i > 0:
                for k, v in got.items():
                    if v is not None:
                        out[k].append(v * 1000)
        return out
    finally:
        stop(p)


def main():
    sizes, runs, d, keep, bins = args()
    print("| messages | build | token login | /search lorem | /search zyzzyva | /search lorem from:u7 in:#room3 |")
    print("|---|---|---|---|---|---|")
    for n in sizes:
        db = os.path.join(d, f"growth-{n}.db")
        fill(bins[0], db, n)
        results = {b: {"login": [], "common": [], "rare": [], "filtered": []} for b in bins}
        for _ in range(runs):  # alternating: one round of each build, RUNS times
            for b in bins:
                for k, v in measure(b, db, 1).items():
                    results[b][k] += v
        for b in bins:
            cells = []
            for k in ("login", "common", "rare", "filtered"):
                v = results[b][k]
                cells.append(f"{statistics.median(v):.2f} ms [{min(v):.2f}–{max(v):.2f}]" if v else "—")
            print(f"| {n:,} | {os.path.basename(b)} | " + " | ".join(cells) + " |", flush=True)
        if not keep:
            for f in (db, db + "-wal", db + "-shm"):
                if os.path.exists(f):
                    os.remove(f)


if __name__ == "__main__":
    main()
