#!/usr/bin/env python3
# Usage: LINES=400 python3 scripts/waiting-clients.py target/release/besedka 3000
# 3,000 logged-in clients that never read, each with a backlog under --max-backlog; then no
# chat at all for 10 s: how much CPU does the server spend? (issue 7: the old hub retried
# every 20 ms and used 21% of a core.)
import socket, sys, time, os, subprocess, tempfile
binary, n = sys.argv[1], int(sys.argv[2])
d = tempfile.mkdtemp()
p = subprocess.Popen([binary, "serve", "--addr", "127.0.0.1:0", "--db", d+"/b.db", "--max-clients", "12000",
    "--allow-ip", "127.0.0.0/8", "--log-level", "warn", "--max-sessions-per-user", "65536", "--history", "0",
    "--max-rate", "100000", "--max-backlog", "16777216"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
port = int(p.stdout.readline().decode().split()[3].split(":")[1])
def cpu():
    f = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
talker = socket.create_connection(("127.0.0.1", port))
talker.sendall(b"/register talker talkerpass1\r\n")
buf = b""
talker.settimeout(30)  # every wait is bounded
while b"In #lobby (" not in buf:  # the online line: the login is complete
    got = talker.recv(4096)
    if not got: sys.exit(f"the server closed the talker's connection: {buf!r}")
    buf += got
tok = buf.split(b"Your session token: ")[1].split(b";")[0].decode()
socks = []
for i in range(n):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port)); s.sendall(f"/token {tok}\r\n".encode()); socks.append(s)
time.sleep(5)  # all logged in (they read nothing from here on)
line = b"x" * 1000
for i in range(int(os.environ.get("LINES","100"))):
    talker.sendall(b"%d " % i + line + b"\r\n")
time.sleep(5)  # the burst is queued; nobody reads
c0 = cpu(); time.sleep(10); c1 = cpu()
st = open(f"/proc/{p.pid}/status").read()
rss = [l for l in st.splitlines() if l.startswith("VmRSS")][0]
print(f"{binary}: {n} non-reading clients, CPU over 10 s of silence: {c1-c0:.2f} s ({(c1-c0)*10:.0f}% of a core); {rss}")
p.stdin.write(b"shutdown\n"); p.stdin.flush()
try: p.wait(15)
except Exception: p.kill()
