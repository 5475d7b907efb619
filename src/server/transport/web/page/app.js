// besedka's web page: the line protocol over a WebSocket, one text frame per line.
// Everything from the server is shown with textContent: never parsed as HTML.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const KEY = "besedka.token";
  const MAX_LINES = 2000;
  let ws = null;
  let state = "idle"; // idle | auth | login | chat
  let token = localStorage.getItem(KEY) || "";
  let me = "";
  let registering = false;
  let retry = 0;
  let retryTimer = null;
  let stay = true; // reconnect when the connection drops
  let quietWho = 0; // /who answers to fold into the list instead of the log
  let quietRooms = false;
  // /unread asked quietly (the counts beside the rooms), and its lines being read.
  let quietUnread = 0;
  let inUnread = false;
  let unreadShown = false;
  const unread = new Map();
  let unreadTimer = null;
  let inListing = false;
  let listingShown = false;
  let refreshTimer = null;
  let refreshRooms = false;
  // The next "* You are in" is the login's (after the missed private messages), not a /join.
  let freshLogin = false;
  const history = [];
  let historyAt = 0;
  const lines = besedkaLog($("log"), MAX_LINES);

  function show(id, on) { $(id).classList.toggle("hidden", !on); }

  function status(text) {
    $("status").textContent = text;
    show("status", text !== "");
  }

  function connect() {
    clearTimeout(retryTimer);
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(scheme + location.host + "/ws");
    ws.onopen = () => {
      retry = 0;
      status("");
      if (token) {
        state = "auth";
        ws.send("/token " + token);
      } else {
        toLogin();
      }
    };
    ws.onmessage = (ev) => onLine(String(ev.data));
    ws.onclose = () => {
      ws = null;
      if (!stay) { stay = true; toLogin(); return; }
      const wait = Math.min(30, 2 ** retry);
      retry += 1;
      status("Disconnected. Reconnecting in " + wait + " s…");
      retryTimer = setTimeout(connect, wait * 1000);
    };
  }

  function send(line) {
    if (ws && ws.readyState === WebSocket.OPEN) { ws.send(line); return true; }
    return false;
  }

  function toLogin() {
    state = "login";
    show("login", true); show("chat", false); show("side", false); show("logout", false);
    show("drawer", false); drawer(false);
    $("room").textContent = ""; $("topic").textContent = "";
    setRegistering(false);
    if (!ws) connect();
    $("name").focus();
  }

  function toChat() {
    state = "chat";
    // What a login shows (missed private messages, the room's history) replaces what an
    // earlier connection showed, so a reconnect repeats nothing.
    lines.clear();
    freshLogin = true;
    show("login", false); show("chat", true); show("side", true); show("logout", true);
    show("drawer", true);
    $("login-error").textContent = "";
    $("password").value = ""; $("repeat").value = "";
    $("say").focus();
    quietRooms = true;
    send("/rooms");
    quietUnread += 1;
    if (!send("/unread")) quietUnread -= 1;
    // New lines in the other rooms come without a join or leave to refresh on.
    if (!unreadTimer) unreadTimer = setInterval(() => { if (state === "chat") refreshSoon(false); }, 30000);
  }

  function setRegistering(on) {
    registering = on;
    show("repeat-row", on);
    hint(on ? "A new name: repeat the password to register it." : "");
    $("repeat").required = on;
    $("go").textContent = on ? "Register" : "Log in";
  }

  // ---- lines from the server ----

  function onLine(line) {
    // A token is a password: kept, never shown.
    if (line.startsWith("* Your session token: ")) {
      token = line.slice(22).split(/[;\s]/)[0];
      if ($("remember").checked) localStorage.setItem(KEY, token);
      return;
    }
    if (state === "chat") return chatLine(line);
    if (line.startsWith("* Hello, ")) {
      me = line.slice(9).replace(/!$/, "");
      return toChat();
    }
    if (line.startsWith("! Unknown or expired token")) {
      token = ""; localStorage.removeItem(KEY);
      return toLogin();
    }
    if (line.startsWith("! No such user")) {
      // Not an error: how a new name registers (setRegistering says so as a hint).
      setRegistering(true);
      $("login-error").textContent = "";
      $("repeat").focus();
      return;
    }
    if (line.startsWith("! ")) {
      $("login-error").textContent = line.slice(2);
      // Refused with the token (banned, too many sessions): ask, rather than try again.
      if (state === "auth") { token = ""; toLogin(); }
    }
  }

  // The web page's own frames (never sent to a terminal): `\u0001ID ` in front of a chat
  // line is its id; `\u0001removed ID,ID` takes those lines out of the log (an operator
  // removed them).
  let lineId = "";
  function chatLine(raw) {
    let line = raw;
    let bell = false;
    if (line.startsWith("\u0001removed ")) return lines.remove(line.slice(9).split(","));
    const idm = /^\u0001(\d+) /.exec(line);
    lineId = idm ? idm[1] : "";
    if (idm) line = line.slice(idm[0].length);
    if (line.startsWith("\u0007")) { bell = true; line = line.slice(1); }
    if (line === "* Bye." || line.startsWith("* Logged out")) stay = false;
    if (line.startsWith("* Logged out")) { token = ""; localStorage.removeItem(KEY); }
    if (line.startsWith("*   ") && inUnread) {
      const u = /^\*   (#\S+): (\d+\+?) new$/.exec(line);
      if (u) { unread.set(u[1], u[2]); markUnread(); }
      if (!unreadShown) return;
      return append(line, "notice");
    }
    inUnread = false;
    if (line === "* New since you were last there:" || line === "* Nothing new in your other rooms.") {
      inUnread = line.endsWith(":");
      unreadShown = quietUnread === 0;
      if (quietUnread > 0) quietUnread -= 1;
      unread.clear();
      markUnread();
      if (!unreadShown) return;
      return append(line, "notice");
    }
    if (line.startsWith("*   ") && inListing) {
      const m = /^\*   (#\S+) \((\d+)\)(?:: (.*))?$/.exec(line);
      if (m) addRoom(m[1], m[2], m[3] || "");
      if (!listingShown) return;
      return append(line, "notice");
    }
    inListing = false;
    let m;
    if ((m = /^\* Rooms \(\d+\)/.exec(line))) {
      inListing = true;
      listingShown = !quietRooms;
      quietRooms = false;
      $("rooms").replaceChildren();
      if (!listingShown) return;
      return append(line, "notice");
    }
    if ((m = /^\* In (#\S+) \((\d+)\): (.*)$/.exec(line))) {
      setRoom(m[1]);
      setPeople(m[3]);
      if (quietWho > 0) { quietWho -= 1; return; }
      return append(line, "notice");
    }
    if ((m = /^\* You are in (#\S+?)\.(?: Topic: (.*))?$/.exec(line))) {
      setRoom(m[1]);
      $("topic").textContent = m[2] || "";
      // Another room: its history follows; the old room's lines go (one room at a time),
      // the private lines stay (the new room's history would not bring them back).
      const kept = freshLogin ? [] : lines.takePrivate();
      freshLogin = false;
      refreshSoon(true);
      append(line, "notice");
      return lines.putBack(kept);
    }
    if ((m = /^\* \S+ set the topic: (.*)$/.exec(line))) $("topic").textContent = m[1];
    else if (/^\* \S+ cleared the topic$/.test(line)) $("topic").textContent = "";
    if (/^\* (\S+ (joined|left)( #\S+| for #\S+)?|\d+ people (joined|left).*)$/.test(line)) {
      refreshSoon(false);
      return append(line, "notice muted");
    }
    if (line.startsWith("! ")) return append(line, "error");
    if (line.startsWith("[")) return chat(line, bell);
    append(line, "notice");
  }

  // `[time] NAME: text`, `[time] * NAME text`, `[time] A -> B: text`
  function chat(line, bell) {
    const m = /^\[([^\]]+)\] (.*)$/.exec(line);
    const div = m && lines.timed(m[1]);
    if (!div) return append(line, "");
    const rest = m[2];
    let p;
    if ((p = /^\* (\S+) (.*)$/.exec(rest))) {
      div.classList.add("action");
      div.append("* " + p[1] + " " + p[2]);
      mark(div, p[1], p[2], bell);
    } else if ((p = /^(\S+) -> (\S+): (.*)$/.exec(rest))) {
      div.classList.add("private");
      div.append(nick(p[1] + " → " + p[2]), ": " + p[3]);
    } else if ((p = /^(\S+): (.*)$/.exec(rest))) {
      div.append(nick(p[1]), ": " + p[2]);
      mark(div, p[1], p[2], bell);
    } else {
      div.append(rest);
    }
    if (lineId) div.dataset.id = lineId;
    lines.put(div);
  }

  function nick(name) {
    const b = document.createElement("span");
    b.className = "nick";
    b.textContent = name;
    return b;
  }

  // A line that names the user (the server rang the bell, or the name is in it) stands out.
  function mark(div, author, text, bell) {
    if (!me || author.toLowerCase() === me.toLowerCase()) return;
    const esc = me.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const named = new RegExp("(^|[^\\p{L}\\p{N}_-])@?" + esc + "($|[^\\p{L}\\p{N}_-])", "iu");
    if (bell || named.test(text)) div.classList.add("mention");
  }

  function append(text, cls) {
    const div = document.createElement("div");
    div.className = cls;
    div.textContent = text;
    if (lineId) div.dataset.id = lineId;
    lines.put(div);
  }

  function setRoom(name) {
    $("room").textContent = name;
    for (const li of $("rooms").children) li.classList.toggle("here", li.dataset.room === name);
  }

  function setPeople(list) {
    const ul = $("people");
    ul.replaceChildren();
    for (const name of list.split(", ")) {
      if (!name || name.startsWith("and ")) continue;
      const li = document.createElement("li");
      li.textContent = name;
      ul.append(li);
    }
  }

  function addRoom(name, people, topic) {
    const li = document.createElement("li");
    li.dataset.room = name;
    li.textContent = name + " (" + people + ")";
    li.title = topic;
    if (name === $("room").textContent) li.classList.add("here");
    const badge = document.createElement("span");
    badge.className = "unread";
    li.append(badge);
    li.addEventListener("click", () => { send("/join " + name); drawer(false); });
    $("rooms").append(li);
    markUnread();
  }

  // The counts of new lines beside the rooms (from /unread; none beside the room you are in).
  function markUnread() {
    for (const li of $("rooms").children) {
      const badge = li.querySelector(".unread");
      if (!badge) continue;
      const n = li.dataset.room === $("room").textContent ? "" : unread.get(li.dataset.room) || "";
      badge.textContent = n;
      badge.title = n ? n + " new since you were last there" : "";
    }
  }

  // After joins and leaves, ask quietly for the online list (and the rooms), at most once a
  // second.
  // A join asked for while the timer runs for a leave still gets the rooms.
  function refreshSoon(rooms) {
    refreshRooms = refreshRooms || rooms;
    if (refreshTimer) return;
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      quietWho += 1;
      if (!send("/who")) quietWho -= 1;
      if (refreshRooms) { quietRooms = true; send("/rooms"); }
      quietUnread += 1;
      if (!send("/unread")) quietUnread -= 1;
      refreshRooms = false;
    }, 1000);
  }

  // ---- what the user does ----

  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = $("name").value.trim();
    const password = $("password").value;
    if (/\s/.test(name)) { $("login-error").textContent = "A name has no spaces."; return; }
    if (registering) {
      if ($("repeat").value !== password) {
        $("login-error").textContent = "The passwords do not match.";
        return;
      }
      send("/register " + name + " " + password);
    } else {
      send("/login " + name + " " + password);
    }
    $("login-error").textContent = "";
  });
  $("name").addEventListener("input", () => setRegistering(false));

  $("say-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("say").value;
    if (!text.trim()) return;
    if (!send(text)) { status("Not connected: the line was not sent."); return; }
    if (!text.startsWith("/") || text.startsWith("//")) echo(text);
    history.push(text);
    if (history.length > 100) history.shift();
    historyAt = history.length;
    $("say").value = "";
  });

  // The server does not echo one's own plain lines (a terminal shows them already).
  function echo(text) {
    const now = new Date().toISOString().slice(11, 19);
    chat("[" + now + "] " + me + ": " + (text.startsWith("//") ? text.slice(1) : text), false);
  }

  $("say").addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowUp" && historyAt > 0) {
      historyAt -= 1;
      $("say").value = history[historyAt];
      ev.preventDefault();
    } else if (ev.key === "ArrowDown" && historyAt < history.length) {
      historyAt += 1;
      $("say").value = history[historyAt] || "";
      ev.preventDefault();
    }
  });

  $("join-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    let room = $("join").value.trim();
    if (!room) return;
    if (!room.startsWith("#")) room = "#" + room;
    send("/join " + room);
    $("join").value = "";
    drawer(false);
  });

  function hint(text) {
    $("login-hint").textContent = text;
    show("login-hint", text !== "");
  }

  // A phone's drawer with the online list and the rooms (wider screens show them beside).
  function drawer(open) {
    $("side").classList.toggle("open", open);
    $("drawer").setAttribute("aria-expanded", String(open));
  }
  $("drawer").addEventListener("click", () => drawer(!$("side").classList.contains("open")));
  $("drawer-close").addEventListener("click", () => drawer(false));
  document.addEventListener("keydown", (ev) => { if (ev.key === "Escape") drawer(false); });

  // The page is as tall as what is visible of it. Chromium and Firefox on Android make room
  // for the keyboard by shrinking the layout viewport (interactive-widget=resizes-content),
  // which 100dvh follows. Safari on iOS lays its keyboard over the page instead, so the
  // visible part (the visual viewport) is shorter than the layout viewport: then the page
  // takes the visual viewport's height. Not when zoomed in: that height is then a part of
  // the page.
  const vv = window.visualViewport;
  function fit() {
    const root = document.documentElement;
    if (Math.abs(vv.scale - 1) < 0.01 && vv.height < window.innerHeight - 1) {
      root.style.setProperty("--vvh", vv.height + "px");
      window.scrollTo(0, 0);
    } else {
      root.style.removeProperty("--vvh");
    }
  }
  if (vv) { vv.addEventListener("resize", fit); fit(); }

  $("logout").addEventListener("click", () => {
    stay = false;
    token = "";
    localStorage.removeItem(KEY);
    if (!send("/logout")) toLogin();
  });

  connect();
})();
