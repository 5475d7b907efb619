// The message log of besedka's web page: lines in, at most `maxLines`; a line with a time
// shows it as HH:MM in the reader's time zone, under a line for its day. page.rs puts this
// script before app.js, in one <script>.
"use strict";
function besedkaLog(log, maxLines) {
  const HOUR = 3600 * 1000;
  const pad = (n) => String(n).padStart(2, "0");

  // The server's times are UTC: `HH:MM:SS` on a live line, `YYYY-MM-DD HH:MM:SS` in a replay
  // (history, search). A live line is from today (UTC) unless that puts it more than 12 hours
  // away: said just before midnight and shown just after, or the two clocks differ.
  function when(stamp) {
    let m = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)$/.exec(stamp);
    if (m) {
      const at = Date.UTC(+m[1], m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
      return { at: new Date(at), replay: true };
    }
    m = /^(\d\d):(\d\d):(\d\d)$/.exec(stamp);
    if (!m) return null;
    const now = Date.now();
    const today = new Date(now);
    let at = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate(),
      +m[1], +m[2], +m[3]);
    if (at - now > 12 * HOUR) at -= 24 * HOUR;
    else if (now - at > 12 * HOUR) at += 24 * HOUR;
    return { at: new Date(at), replay: false };
  }

  const dayOf = (at) =>
    at.getFullYear() + "-" + pad(at.getMonth() + 1) + "-" + pad(at.getDate());

  // The line that starts a day; its time is the day's first moment, so it sorts with lines.
  function dayLine(at) {
    const div = document.createElement("div");
    div.className = "day";
    div.dataset.day = dayOf(at);
    div.dataset.ts = new Date(at.getFullYear(), at.getMonth(), at.getDate()).getTime();
    div.textContent = at.toLocaleDateString(undefined,
      { weekday: "long", year: "numeric", month: "long", day: "numeric" });
    return div;
  }

  // A new line starting with its time (`stamp` as the server wrote it), or null when `stamp`
  // is not a time. The full time, in UTC as the server keeps it, is the time's tooltip.
  function timed(stamp) {
    const w = when(stamp);
    if (!w) return null;
    const div = document.createElement("div");
    div.className = "timed";
    div.dataset.ts = w.at.getTime();
    div.dataset.day = dayOf(w.at);
    if (w.replay) div.dataset.replay = "";
    const time = document.createElement("span");
    time.className = "time";
    time.textContent = pad(w.at.getHours()) + ":" + pad(w.at.getMinutes());
    time.title = w.at.toISOString().slice(0, 19).replace("T", " ") + " UTC";
    div.append(time);
    return div;
  }

  const lastDay = (el) => {
    for (; el; el = el.previousElementSibling) if (el.dataset.day) return el.dataset.day;
    return null;
  };
  const nextTimed = (el) => {
    for (el = el.nextElementSibling; el; el = el.nextElementSibling) if (el.dataset.day) return el;
    return null;
  };

  // A timed line goes at the end, under the line of its day. A replayed line goes before the
  // private lines kept over a /join that are later than it (so the new room's history and
  // one's private lines read in time order), and before nothing else.
  function place(div) {
    const ts = +div.dataset.ts;
    let prev = log.lastElementChild;
    if ("replay" in div.dataset) {
      while (prev && ("kept" in prev.dataset || prev.classList.contains("day"))
             && +prev.dataset.ts > ts) prev = prev.previousElementSibling;
    }
    const insert = (el) => { if (prev) prev.after(el); else log.prepend(el); prev = el; };
    if (lastDay(prev) !== div.dataset.day) insert(dayLine(new Date(ts)));
    insert(div);
    // A later line of another day now under this one needs its day line again.
    const next = nextTimed(div);
    if (next && !next.classList.contains("day") && next.dataset.day !== div.dataset.day) {
      next.before(dayLine(new Date(+next.dataset.ts)));
    }
  }

  function put(div) {
    const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 40;
    if (div.dataset.day) place(div); else log.append(div);
    while (log.childElementCount > maxLines) log.firstElementChild.remove();
    if (atEnd) log.scrollTop = log.scrollHeight;
  }

  // The log empties for another room's history, but for the private lines: a room's history
  // does not have them, and they are a conversation that goes on in every room.
  function takePrivate() {
    const kept = Array.from(log.children).filter((e) => e.classList.contains("private"));
    log.replaceChildren();
    return kept;
  }

  function putBack(kept) {
    for (const div of kept) { div.dataset.kept = ""; put(div); }
  }

  // When the log gets shorter (a phone's keyboard opens), the newest line stays in view.
  let atEnd = true;
  log.addEventListener("scroll", () => {
    atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 40;
  });
  new ResizeObserver(() => { if (atEnd) log.scrollTop = log.scrollHeight; }).observe(log);

  // Lines the server removed (an operator's /delete or purge; `ids` are digits): out of the
  // log, with a day line left with no line under it.
  function remove(ids) {
    for (const id of ids) {
      if (!/^\d+$/.test(id)) continue;
      for (const el of log.querySelectorAll('[data-id="' + id + '"]')) el.remove();
    }
    for (const day of Array.from(log.querySelectorAll(".day"))) {
      const next = day.nextElementSibling;
      if (!next || next.classList.contains("day")) day.remove();
    }
  }

  return { timed, put, takePrivate, putBack, remove, clear: () => log.replaceChildren() };
}
