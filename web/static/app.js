// lobbyd dev console: plain JavaScript, no build step, no dependencies.
//
// It speaks the client protocol (docs/protocol.md) over one WebSocket.
// Every string that comes from the server is put on the page with
// textContent (see el), never parsed as HTML.
//
// The lobby panel (#lobby-panel) follows lobby.state, lobby.chat and
// lobby.removed (EVENT_HANDLERS) and welcome.state.lobby (onWelcome); the
// matchmaking controls are lobby-aware (renderControls): in a lobby only its
// owner queues it, as one ticket, once every member is ready.
'use strict';

(() => {
  // ---------------------------------------------------------------- helpers

  const $ = (id) => document.getElementById(id);

  // el builds an element from trusted structure and untrusted text; str
  // and truncate shape text (common/dom.js).
  const { el, str, truncate } = window.lobbyd;


  // runes counts characters as the server does: Unicode code points (Go's
  // utf8.RuneCountInString), not UTF-16 units (String.length, maxlength),
  // which count an emoji as two.
  const runes = (s) => [...s].length;

  // MAX_NAME is lobby.MaxNameRunes: POST /v1/dev/token refuses a longer
  // name, and a token's name is cut to it.
  const MAX_NAME = 32;

  function fmtMs(ms) {
    return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
  }

  function fmtDuration(ms) {
    const total = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = String(total % 60).padStart(2, '0');
    return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
  }

  // fmtWait says an expected wait the way a player reads it at a glance:
  // "under a second", "about 12 s", "about 3 min", "about 1 h 5 min".
  // (fmtDuration's m:ss is a stopwatch: "0:00" for a short wait reads as
  // "no wait at all" or "broken".)
  function fmtWait(ms) {
    if (!(ms >= 0)) return '';
    if (ms < 1000) return 'under a second';
    const s = Math.round(ms / 1000);
    if (s < 60) return `about ${s} s`;
    const min = Math.round(ms / 60000);
    if (min < 60) return `about ${min} min`;
    const h = Math.floor(min / 60);
    return `about ${h} h${min % 60 ? ` ${min % 60} min` : ''}`;
  }

  // fmtAgo says how far a time is from now: "in 3 min", "5 s ago".
  function fmtAgo(ms) {
    const words = fmtWait(Math.abs(ms)).replace(/^about /, '');
    return ms >= 0 ? `${words} ago` : `in ${words}`;
  }

  function clockTime(d) {
    return `${d.toTimeString().slice(0, 8)}.${String(d.getMilliseconds()).padStart(3, '0')}`;
  }

  function middleTruncate(s, head = 20, tail = 10) {
    return s.length <= head + tail + 1 ? s : `${s.slice(0, head)}…${s.slice(-tail)}`;
  }

  // announce tells screen-reader users about something that happened
  // elsewhere on the page (a reply, a copy), once.
  function announce(text) {
    const region = $('announce');
    region.textContent = '';
    setTimeout(() => { region.textContent = text; }, 50);
  }

  async function copyText(text, button) {
    let ok = false;
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
        ok = true;
      }
    } catch { /* fall back below */ }
    if (!ok) {
      // Plain http on a LAN address is not a secure context: no Clipboard API.
      const area = el('textarea', { class: 'visually-hidden', value: text, readOnly: true, 'aria-hidden': 'true' });
      document.body.append(area);
      area.select();
      try { ok = document.execCommand('copy'); } catch { ok = false; }
      area.remove();
    }
    const label = ok ? 'Copied' : 'Copy failed';
    announce(label);
    if (button) {
      button.dataset.label ??= button.textContent;
      button.textContent = label;
      clearTimeout(button.flashTimer);
      button.flashTimer = setTimeout(() => { button.textContent = button.dataset.label; }, 1200);
    }
  }

  function copyButton(text, what) {
    return el('button', {
      class: 'small', type: 'button', text: 'Copy', 'aria-label': `Copy ${what}`,
      onclick: (ev) => copyText(text, ev.currentTarget),
    });
  }

  // A RequestError is a failed request: a reply with ok false, or no reply.
  class RequestError extends Error {
    constructor(code, message) {
      super(message);
      this.code = code;
    }
  }

  // ---------------------------------------------------------------- storage

  // The session lives in sessionStorage: a reload reconnects as the same
  // player, a new tab is a new player. Preferences outlive the tab; they
  // hold nothing about a player (not their name: a new tab is someone new).
  // What a player saw (their last match and its history, their ticket and
  // what it was queued with) is kept per player id in the tab's
  // sessionStorage (PLAYER_KEY), because the server does not send a
  // match.ready again once it was delivered.
  const SESSION_KEY = 'lobbyd.console.session';
  const PREFS_KEY = 'lobbyd.console.prefs';
  const PLAYER_KEY = 'lobbyd.console.player.'; // + playerId
  const FORM_KEY = 'lobbyd.console.queue-form';

  function loadJSON(storage, key) {
    try {
      return JSON.parse(storage.getItem(key)) ?? null;
    } catch {
      return null;
    }
  }

  function saveJSON(storage, key, value) {
    try {
      if (value == null) storage.removeItem(key);
      else storage.setItem(key, JSON.stringify(value));
    } catch { /* storage full or disabled: the console still works */ }
  }

  let session = (() => {
    const s = loadJSON(sessionStorage, SESSION_KEY);
    return s && typeof s.token === 'string' && typeof s.playerId === 'string' ? s : null;
  })();
  const prefs = Object.assign({ queue: '', hidePings: false, expand: true }, loadJSON(localStorage, PREFS_KEY));
  const savePrefs = () => saveJSON(localStorage, PREFS_KEY, prefs);
  if ('name' in prefs) {
    // Older consoles kept the last name here and filled it into every new tab.
    delete prefs.name;
    savePrefs();
  }

  // The queue form as this tab left it: {queue, skill, regions}.
  const queueForm = Object.assign({ queue: '', skill: '', regions: [] }, loadJSON(sessionStorage, FORM_KEY));
  if (!Array.isArray(queueForm.regions)) queueForm.regions = [];
  const saveQueueForm = () => saveJSON(sessionStorage, FORM_KEY, queueForm);

  // tokenTiming reads a token's exp and nbf against the clock (the
  // server's, as measured by ping, when known): {state, text}, state one of
  // ok, expired, early, noexp, bad. For display only: the server judges.
  function tokenTiming(claims, now = Date.now() + view.clockOffset) {
    if (!claims) return { state: 'bad', text: 'not a JWT this console can read' };
    const exp = Number(claims.exp);
    const nbf = Number(claims.nbf);
    const at = (sec) => new Date(sec * 1000).toLocaleString();
    if (claims.nbf != null && Number.isFinite(nbf) && nbf * 1000 > now) {
      return { state: 'early', text: `not valid yet: its nbf is ${at(nbf)} (${fmtAgo(now - nbf * 1000)}); the server refuses it until then` };
    }
    if (claims.exp == null || !Number.isFinite(exp)) return { state: 'noexp', text: 'no exp claim: the server refuses tokens without one' };
    if (exp * 1000 <= now) return { state: 'expired', text: `expired ${at(exp)} (${fmtAgo(now - exp * 1000)}); the server will refuse it` };
    return { state: 'ok', text: `expires ${at(exp)} (${fmtAgo(now - exp * 1000)})` };
  }

  // tokenClaims reads a JWT's claims for display. It does not verify
  // anything: the server does.
  function tokenClaims(token) {
    try {
      const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const bytes = Uint8Array.from(atob(part.padEnd(Math.ceil(part.length / 4) * 4, '=')), (c) => c.charCodeAt(0));
      const claims = JSON.parse(new TextDecoder().decode(bytes));
      return claims && typeof claims === 'object' ? claims : null;
    } catch {
      return null;
    }
  }

  async function fetchDevToken(name, playerId) {
    const body = {};
    if (name) body.name = name;
    if (playerId) body.playerId = playerId;
    let res;
    try {
      res = await fetch('v1/dev/token', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), cache: 'no-store',
      });
    } catch {
      throw new Error('Could not reach the server for a token.');
    }
    const data = await res.json().catch(() => null);
    if (res.status === 404 || res.status === 405) {
      throw new Error('This server does not issue development tokens (LOBBYD_DEV_AUTH is off). Use a token from your game backend instead.');
    }
    if (!res.ok) {
      throw new Error(`Token request failed: HTTP ${res.status}${data?.error?.message ? ` (${data.error.message})` : ''}.`);
    }
    if (typeof data?.token !== 'string' || typeof data?.playerId !== 'string') {
      throw new Error('The token response has no token or playerId.');
    }
    logSys('token', `development token for player ${data.playerId}`);
    return data;
  }

  // ---------------------------------------------------------------- frame log

  const LOG_CAP = 200;
  const logEntries = []; // newest first, one per <li> in #log

  function addLog(entry) {
    entry.time = new Date();
    logEntries.unshift(entry);
    const li = renderLogEntry(entry);
    $('log').prepend(li);
    while (logEntries.length > LOG_CAP) {
      logEntries.pop();
      $('log').lastElementChild.remove();
    }
    applyLogFilter(li, entry);
    renderLogCount();
  }

  function renderLogCount() {
    $('log-count').textContent = logEntries.length ? `${logEntries.length} / ${LOG_CAP}` : '';
    $('log-empty').hidden = logEntries.length > 0;
  }

  function logSys(type, note, detail, isError) {
    addLog({ dir: 'sys', type, note, detail, error: !!isError });
  }

  const DIR_LABELS = { in: ['IN', 'received'], out: ['OUT', 'sent'], sys: ['···', 'console'] };

  function renderLogEntry(entry) {
    const [short, long] = DIR_LABELS[entry.dir];
    const head = [
      el('span', { class: 'dir' }, el('span', { 'aria-hidden': 'true', text: short }), el('span', { class: 'visually-hidden', text: long })),
      el('span', { class: 'time', text: clockTime(entry.time) }),
      el('span', { class: 'type', text: entry.type }),
      entry.note ? el('span', { class: 'note', text: entry.note }) : null,
    ];
    const body = entry.frame !== undefined ? JSON.stringify(entry.frame, null, 2)
      : entry.text !== undefined ? entry.text
        : entry.detail !== undefined ? JSON.stringify(entry.detail, null, 2) : null;
    const cls = `${entry.dir}${entry.error ? ' err' : ''}`;
    if (body == null) return el('li', { class: cls }, el('div', { class: 'head' }, head));
    // A long frame scrolls inside its own box, which then takes focus so
    // keyboard users can scroll it too.
    const tall = body.length > 1500;
    const pre = el('pre', { text: body, class: tall ? 'tall' : null, tabIndex: tall ? 0 : null, 'aria-label': tall ? `${entry.type} frame` : null });
    return el('li', { class: cls }, el('details', { open: prefs.expand }, el('summary', {}, head), pre));
  }

  function applyLogFilter(li, entry) {
    const query = $('log-filter').value.trim().toLowerCase();
    let hide = prefs.hidePings && entry.isPing;
    if (!hide && query) {
      entry.haystack ??= `${entry.type} ${entry.note ?? ''} ${li.textContent}`.toLowerCase();
      hide = !entry.haystack.includes(query);
    }
    li.hidden = !!hide;
  }

  function refilterLog() {
    const items = $('log').children;
    logEntries.forEach((entry, i) => applyLogFilter(items[i], entry));
  }

  function downloadLog() {
    const rows = logEntries.slice().reverse().map((e) => ({
      time: e.time.toISOString(), dir: e.dir, type: e.type, note: e.note,
      frame: e.frame, text: e.text, detail: e.detail,
    }));
    const url = URL.createObjectURL(new Blob([JSON.stringify(rows, null, 2)], { type: 'application/json' }));
    const link = el('a', { href: url, download: `lobbyd-frames-${new Date().toISOString().replace(/[:.]/g, '-')}.json` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 5000);
  }

  // ---------------------------------------------------------------- connection

  // What the console does on each close code (docs/protocol.md, "Close
  // codes"). stop: stay closed; backoff: reconnect after an exponential
  // back-off with jitter; long-backoff: the same, starting at 30 s;
  // new-token: get a fresh token, then reconnect.
  const CLOSE_CODES = {
    1000: { label: 'normal close', action: 'stop', advice: 'The connection was closed normally.' },
    1001: { label: 'server going away', action: 'backoff', advice: 'The node is shutting down or draining; reconnecting, possibly to another node.' },
    1003: { label: 'binary frame rejected', action: 'stop', advice: 'The server accepts text frames only: a client bug. Not reconnecting.' },
    1008: { label: 'policy violation', action: 'long-backoff', advice: 'Too many requests. Reconnecting only after a long back-off.' },
    1009: { label: 'frame too large', action: 'stop', advice: 'A frame exceeded the server\'s size limit (4 KiB by default): a client bug. Not reconnecting.' },
    1011: { label: 'internal server error', action: 'backoff', advice: 'The server hit an internal error; reconnecting with back-off.' },
    4001: { label: 'session replaced', action: 'stop', advice: 'This player connected somewhere else (another tab or device). Not reconnecting, so the two do not keep replacing each other.' },
    4003: { label: 'token expired', action: 'new-token', advice: 'The token expired or was revoked; getting a new one, then reconnecting.' },
    4004: { label: 'slow consumer', action: 'backoff', advice: 'The server\'s outgoing queue for this socket filled up; reconnecting with back-off.' },
  };

  // Codes the browser reports by itself; no server sends them.
  const BROWSER_CLOSE_CODES = {
    1005: { label: 'closed without a status code', action: 'backoff', advice: 'Reconnecting with back-off.' },
    1006: { label: 'connection lost', action: 'backoff', advice: 'The connection dropped without a close frame (network, proxy, or the server process died); reconnecting with back-off.' },
  };

  function closePolicy(code) {
    return CLOSE_CODES[code] ?? BROWSER_CLOSE_CODES[code]
      ?? { label: 'unknown close code', action: 'backoff', advice: 'This console does not know this code; reconnecting with back-off.' };
  }

  const BACKOFF = { base: 500, cap: 30000 };
  const LONG_BACKOFF = { base: 30000, cap: 300000 };
  // A connection that stayed up this long resets the back-off.
  const STABLE_MS = 10000;
  const REQUEST_TIMEOUT_MS = 10000;

  const conn = {
    ws: null,
    gen: 0, // bumped by every connect and disconnect; stale async work checks it
    state: 'idle', // idle, connecting, open, ready, waiting, stopped (setConn)
    opened: false,
    welcomed: false,
    welcomedAt: 0,
    // attempt counts the reconnection attempts since the last stable
    // connection: 0 while connecting for the first time, N during the Nth
    // reconnection and while waiting to make it. The status bar and the
    // notice both show this one number.
    attempt: 0,
    tokenRenewals: 0,
    userClosing: false,
    retryTimer: 0,
    retryAt: 0,
  };

  function setConn(stateName, text) {
    conn.state = stateName;
    $('status-conn').dataset.state = stateName;
    $('conn-text').textContent = text;
    $('status-conn').title = `Connection: ${text}`;
    renderControls();
  }

  // connActive: the console is connected, connecting, or means to
  // reconnect (waiting, probing a failed handshake, renewing a token).
  const connActive = () => ['connecting', 'open', 'ready', 'waiting'].includes(conn.state);

  const attemptText = () => `attempt ${conn.attempt}`;

  // ---------------------------------------------------------------- notices

  // A notice tells of something that just happened. An info or warn notice
  // clears itself once there was time to read it (NOTICE_MS; it waits while
  // the pointer or the focus is on it); an error stays until replaced,
  // dismissed with its × button, or cleared by the next success. A notice
  // that shows a live state (the reconnect countdown) passes ttl 0 and is
  // cleared by the code that ends that state.
  const NOTICE_MS = { min: 4000, max: 12000, perChar: 45 };
  const noticeTimers = new Map(); // notice id -> timer

  function noticeTTL(kind, text) {
    if (kind === 'error') return 0;
    return Math.min(NOTICE_MS.max, Math.max(NOTICE_MS.min, 2500 + NOTICE_MS.perChar * text.length));
  }

  // fillNotice shows lines (a string or a list; '' is the countdown line)
  // and actions ([label, handler] pairs) in the notice box, or clears it
  // when kind is null. ttl: milliseconds before it clears itself, 0 never,
  // undefined for noticeTTL's default.
  function fillNotice(box, kind, lines, actions = [], ttl) {
    clearTimeout(noticeTimers.get(box.id));
    noticeTimers.delete(box.id);
    box.className = `notice ${kind || ''}`;
    box.replaceChildren();
    if (!kind) return;
    const list = [].concat(lines);
    box.append(el('button', {
      type: 'button', class: 'notice-close', text: '×', 'aria-label': 'Dismiss this notice',
      onclick: () => fillNotice(box, null),
    }));
    for (const line of list) box.append(el('p', { text: line, class: line === '' ? 'countdown' : null }));
    if (actions.length) {
      box.append(el('div', { class: 'buttons' }, actions.map(([label, handler]) => el('button', { type: 'button', class: 'small', text: label, onclick: handler }))));
    }
    const ms = ttl ?? noticeTTL(kind, list.join(' '));
    if (ms > 0) armNotice(box, ms);
  }

  function armNotice(box, ms) {
    noticeTimers.set(box.id, setTimeout(() => {
      noticeTimers.delete(box.id);
      // Not while someone reads it with the pointer or works in it.
      if (box.matches(':hover, :focus-within')) armNotice(box, 1500);
      else fillNotice(box, null);
    }, ms));
  }

  // showConnNotice fills the notice under the player panel.
  function showConnNotice(kind, lines, actions = [], ttl) {
    fillNotice($('conn-notice'), kind, lines, actions, ttl);
  }

  // socketURL is the handshake URL: ws(s) for the socket, http(s) for a probe.
  function socketURL(token, scheme) {
    const url = new URL('v1/ws', location.href);
    if (scheme === 'ws') url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.search = '';
    url.searchParams.set('token', token);
    return url;
  }

  function connect() {
    cancelRetry();
    if (!session || conn.ws) return;
    const gen = ++conn.gen;
    conn.userClosing = false;
    conn.opened = false;
    conn.welcomed = false;
    conn.welcomedAt = 0;
    setConn('connecting', conn.attempt ? `Reconnecting (${attemptText()})…` : 'Connecting…');
    logSys('connect', `GET /v1/ws?token=… as ${session.playerId}`);
    let ws;
    try {
      ws = new WebSocket(socketURL(session.token, 'ws'));
    } catch (err) {
      logSys('connect', `could not open a socket: ${err.message}`, undefined, true);
      scheduleRetry(BACKOFF, 'Could not open a socket.');
      return;
    }
    conn.ws = ws;
    ws.addEventListener('open', () => {
      if (gen !== conn.gen) return;
      conn.opened = true;
      setConn('open', 'Connected, waiting for welcome…');
      logSys('open', 'socket open');
    });
    ws.addEventListener('message', (ev) => { if (gen === conn.gen) onMessage(ev.data); });
    ws.addEventListener('close', (ev) => { if (ws === conn.ws) onClose(ev); });
  }

  // disconnect closes the socket on the user's behalf (1000) and stops
  // reconnecting.
  function disconnect(reason) {
    cancelRetry();
    conn.gen++;
    if (conn.ws) {
      conn.userClosing = true;
      try { conn.ws.close(1000, reason); } catch { /* already closing */ }
    } else {
      setConn('idle', session ? 'Disconnected' : 'Not connected');
    }
    showConnNotice(null);
  }

  function onClose(ev) {
    const welcomedFor = conn.welcomedAt ? Date.now() - conn.welcomedAt : 0;
    const opened = conn.opened;
    conn.ws = null;
    conn.opened = false;
    conn.welcomed = false;
    conn.welcomedAt = 0;
    failPending(new RequestError('disconnected', 'the socket closed before the reply'));

    const policy = closePolicy(ev.code);
    const summary = `${ev.code} ${policy.label}${ev.reason ? `: ${ev.reason}` : ''}`;
    logSys('close', summary, { code: ev.code, reason: ev.reason, wasClean: ev.wasClean }, !conn.userClosing && ev.code !== 1000);

    if (conn.userClosing) {
      conn.userClosing = false;
      conn.attempt = 0;
      setConn('idle', session ? 'Disconnected' : 'Not connected');
      return;
    }
    if (welcomedFor > STABLE_MS) {
      conn.attempt = 0;
      conn.tokenRenewals = 0;
    }
    if (!opened) {
      handshakeFailed(conn.gen);
      return;
    }
    const heading = `Closed with ${summary}.`;
    switch (policy.action) {
      case 'stop':
        stopped(heading, policy.advice);
        break;
      case 'long-backoff':
        scheduleRetry(LONG_BACKOFF, `${heading} ${policy.advice}`);
        break;
      case 'new-token':
        renewTokenAndConnect(conn.gen, heading);
        break;
      default:
        scheduleRetry(BACKOFF, `${heading} ${policy.advice}`);
    }
  }

  function stopped(heading, advice, actions) {
    setConn('stopped', 'Disconnected');
    showConnNotice('error', [heading, advice], actions ?? [['Connect again', () => { conn.attempt = 0; connect(); }]], 0);
    announce(`${heading} ${advice}`);
  }

  function scheduleRetry(policy, why, delayMs) {
    cancelRetry();
    const ceiling = Math.min(policy.cap, policy.base * 2 ** Math.min(conn.attempt, 20));
    // Half fixed, half random: clients that lost the same node spread out.
    const delay = delayMs ?? ceiling / 2 + Math.random() * (ceiling / 2);
    conn.attempt++;
    conn.retryAt = Date.now() + delay;
    const gen = conn.gen;
    conn.retryTimer = setTimeout(() => {
      conn.retryTimer = 0;
      if (gen === conn.gen) connect();
    }, delay);
    setConn('waiting', `Reconnecting in ${(delay / 1000).toFixed(1)} s (${attemptText()})`);
    showConnNotice('warn', [why, ''], [
      ['Reconnect now', () => connect()],
      ['Stop reconnecting', () => { disconnect('stopped by user'); }],
    ], 0);
    renderCountdown();
  }

  function cancelRetry() {
    if (conn.retryTimer) clearTimeout(conn.retryTimer);
    conn.retryTimer = 0;
    conn.retryAt = 0;
  }

  function renderCountdown() {
    if (!conn.retryTimer) return;
    const left = Math.max(0, conn.retryAt - Date.now());
    const text = `Reconnecting in ${(left / 1000).toFixed(1)} s (${attemptText()})`;
    $('conn-text').textContent = text;
    $('status-conn').title = `Connection: ${text}`;
    const line = document.querySelector('#conn-notice .countdown');
    if (line) line.textContent = `${text}.`;
  }

  // probeHandshake asks for the socket URL without upgrading. A browser
  // hides why a WebSocket handshake failed; this plain request shows the
  // status and error body the handshake got (401, 403, 503).
  async function probeHandshake() {
    try {
      const res = await fetch(socketURL(session.token, 'http'), { cache: 'no-store' });
      const body = await res.json().catch(() => null);
      return {
        status: res.status,
        code: str(body?.error?.code),
        message: str(body?.error?.message),
        retryAfter: Number(res.headers.get('Retry-After')) || 0,
      };
    } catch {
      return { status: 0, code: '', message: 'server unreachable', retryAfter: 0 };
    }
  }

  async function handshakeFailed(gen) {
    setConn('waiting', conn.attempt ? `Handshake failed (${attemptText()}); asking why…` : 'Handshake failed; asking why…');
    const probe = await probeHandshake();
    if (gen !== conn.gen || !session) return;
    const what = probe.status ? `HTTP ${probe.status}${probe.message ? `: ${probe.message}` : ''}` : probe.message;
    logSys('handshake', `refused (${what})`, probe, true);
    switch (probe.status) {
      case 401:
        if (conn.tokenRenewals < 2) {
          renewTokenAndConnect(gen, `The server refused the token (${what}).`);
          return;
        }
        stopped(`The server keeps refusing the token (${what}).`, 'Check the token or start as a new player.');
        return;
      case 403:
        stopped(`The server refused this page's origin (${what}).`, 'Add the origin to LOBBYD_ALLOWED_ORIGINS.');
        return;
      case 503:
        scheduleRetry(BACKOFF, `The server is not accepting connections yet (${what}).`,
          probe.retryAfter ? probe.retryAfter * 1000 * (1 + Math.random() / 2) : undefined);
        return;
      default:
        scheduleRetry(BACKOFF, `Could not connect (${what}).`);
    }
  }

  async function renewTokenAndConnect(gen, why) {
    if (!session) return;
    conn.tokenRenewals++;
    if (session.source !== 'dev') {
      stopped(why, 'This token came from outside the console, which cannot renew it.', [['Use another token', useAnotherToken]]);
      return;
    }
    setConn('connecting', 'Getting a new token…');
    let fresh;
    try {
      fresh = await fetchDevToken(session.name, session.playerId);
    } catch (err) {
      if (gen === conn.gen) scheduleRetry(BACKOFF, `${why} Getting a new token failed: ${err.message}`);
      return;
    }
    if (gen !== conn.gen || !session) return;
    session.token = fresh.token;
    saveSession();
    renderIdentity();
    if (conn.tokenRenewals > 1) scheduleRetry(BACKOFF, `${why} Got a new token.`);
    else connect();
  }

  // ---------------------------------------------------------------- frames

  let nextRequestId = 1;
  const pending = new Map(); // id -> {type, sentAt, resolve, reject, timer}
  const rawPending = new Map(); // id -> {type, sentAt} of raw frames, to label their replies

  // sendText sends one frame and logs it. A quiet frame (a ping, an
  // automatic poll) is hidden by the log's "Hide pings and polls".
  function sendText(text, frame, quiet) {
    if (!conn.ws || conn.ws.readyState !== WebSocket.OPEN) throw new RequestError('disconnected', 'not connected');
    conn.ws.send(text);
    const label = frame ? (str(frame.type) || '(no type)') : rawLabel(text);
    addLog({
      dir: 'out', type: label, note: frame?.id != null ? `#${str(frame.id)}` : '',
      frame: frame ?? undefined, text: frame ? undefined : text, isPing: quiet || frame?.type === 'ping',
    });
  }

  // rawLabel names a frame that is not a request object: "(not JSON)" only
  // when it does not parse; "[1,2]" is JSON, just not an object.
  function rawLabel(text) {
    let v;
    try {
      v = JSON.parse(text);
    } catch {
      return '(not JSON)';
    }
    if (Array.isArray(v)) return '(JSON array, not an object)';
    if (v === null) return '(JSON null, not an object)';
    return `(JSON ${typeof v}, not an object)`;
  }

  // request sends a request and resolves with its reply's data, or rejects
  // with a RequestError carrying the protocol error code. opts.quiet marks
  // a background poll in the frame log.
  function request(type, fields, opts = {}) {
    if (!conn.welcomed) return Promise.reject(new RequestError('disconnected', 'not connected'));
    const id = `c${nextRequestId++}`;
    const frame = { type, id, ...fields };
    const quiet = !!opts.quiet || type === 'ping';
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new RequestError('timeout', `no reply to ${type} within ${REQUEST_TIMEOUT_MS / 1000} s`));
      }, REQUEST_TIMEOUT_MS);
      pending.set(id, { type, sentAt: performance.now(), resolve, reject, timer, quiet });
      try {
        sendText(JSON.stringify(frame), frame, quiet);
      } catch (err) {
        clearTimeout(timer);
        pending.delete(id);
        reject(err);
      }
    });
  }

  function failPending(err) {
    for (const p of pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    pending.clear();
  }

  function onMessage(data) {
    if (typeof data !== 'string') {
      addLog({ dir: 'in', type: '(binary)', note: 'the protocol uses text frames only', error: true });
      return;
    }
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      addLog({ dir: 'in', type: '(not JSON)', text: data, error: true });
      return;
    }
    if (!frame || typeof frame !== 'object' || Array.isArray(frame)) {
      addLog({ dir: 'in', type: rawLabel(data), text: data, error: true });
      return;
    }
    if (frame.type === 'reply') {
      onReply(frame);
      return;
    }
    const handler = EVENT_HANDLERS[frame.type];
    addLog({
      dir: 'in', type: str(frame.type) || '(no type)', frame,
      note: handler ? describeEvent(frame) : 'not handled by this console',
    });
    if (handler) handler(frame);
  }

  function onReply(frame) {
    const id = str(frame.id);
    const raw = rawPending.get(id);
    rawPending.delete(id);
    const p = pending.get(id) ?? raw;
    const rtt = p ? performance.now() - p.sentAt : 0;
    const outcome = frame.ok ? 'ok' : str(frame.error?.code) || 'error';
    const to = p ? `${p.type}${raw ? ' (raw)' : ''}` : id ? 'unknown request' : 'a frame without a usable id';
    addLog({
      dir: 'in', type: 'reply', frame, error: !frame.ok, isPing: !!p?.quiet || p?.type === 'ping',
      note: `${id ? `#${id} ` : ''}${to} → ${outcome}${p ? ` in ${fmtMs(rtt)}` : ''}`,
    });
    if (!p || raw) return;
    pending.delete(id);
    clearTimeout(p.timer);
    if (frame.ok) p.resolve(frame.data ?? {});
    else p.reject(new RequestError(str(frame.error?.code) || 'error', str(frame.error?.message) || 'request failed'));
  }

  function describeEvent(f) {
    switch (f.type) {
      case 'welcome': return `player ${str(f.playerId)} on node ${str(f.node)}`;
      case 'queue.state': return `${str(f.ticket?.status)} ${str(f.ticket?.ticketId)}`;
      case 'match.found':
      case 'match.ready': return `match ${str(f.matchId)}`;
      case 'match.failed': return `match ${str(f.matchId)}: ${str(f.reason)}${f.requeued ? ' (requeued)' : ''}`;
      case 'lobby.state': {
        const l = f.lobby ?? {};
        return `${str(l.code)} ${str(l.status)} · ${lobbyMembers(l).length}/${str(l.maxMembers)} members`;
      }
      case 'lobby.chat': return `${str(f.from?.name) || str(f.from?.playerId)}: ${truncate(str(f.text), 48)}`;
      case 'lobby.removed': return `${str(f.reason)} from ${str(f.lobbyId)}`;
      default: return '';
    }
  }

  // ---------------------------------------------------------------- events

  // Server events this console understands. Frames of any other type are
  // logged and otherwise ignored: the protocol only grows by adding.
  const EVENT_HANDLERS = {
    'welcome': onWelcome,
    'queue.state': (f) => setTicket(f.ticket),
    'match.found': onMatchFound,
    'match.ready': (f) => onMatchReady(f, 'live'),
    'match.failed': onMatchFailed,
    'session.replaced': onSessionReplaced,
    'lobby.state': onLobbyState,
    'lobby.chat': onLobbyChat,
    'lobby.removed': onLobbyRemoved,
  };

  const view = {
    node: '',
    protocol: null,
    ticket: null,
    ticketEndedAt: 0, // local time the ticket stopped searching
    // What this page asked for with queue.join and what the reply said:
    // {ticketId, queue, skill, regions, estimatedWaitMs, at}. queue.state
    // events and welcome.state.ticket carry neither, so it is kept here
    // (and in sessionStorage) for the ticket's life.
    joinRequest: null,
    // {phase: 'found'|'ready'|'failed', found, ready, failed, source,
    // receivedAt, readyAfterMs}; source says where the match came from:
    // live (an event on this connection), welcome (welcome.state.match) or
    // stored (this tab's sessionStorage, after a reload: the server does
    // not send a delivered match.ready again).
    match: null,
    queues: [],
    queuesError: '',
    regionOrder: [], // ticked regions, most preferred first
    history: [], // ended matches, newest first: {matchId, outcome, detail, partyId, invitationId, at}
    pings: [],
    clockOffset: 0, // server clock minus local clock, from the last ping
    busy: false,
    lobby: null, // the player's Lobby as the server last sent it, or null
    lobbyLeft: new Set(), // lobbies this page left or was removed from: late snapshots of them are ignored
    lobbyAway: new Map(), // playerId -> local time a member was first seen disconnected
    lobbyBusy: false, // a lobby request is in flight
    chat: [], // this lobby's timeline, oldest first: {kind: 'msg'|'sys', name, text, at, mine}
    chatLobbyId: '',
    chatHoldUntil: 0, // after rate_limited, Send waits until then
    publicLobbies: null, // the last lobby.list answer, or null before the first
    listError: '',
    listAt: 0, // local time of the last lobby.list (sent)
    listBusy: false,
    settingsDirty: false, // the owner is editing the lobby settings form
    kicking: new Set(), // players this page asked to kick, to tell "kicked" from "left"
  };

  function onWelcome(f) {
    conn.welcomed = true;
    conn.welcomedAt = Date.now();
    view.node = str(f.node);
    view.protocol = f.protocol;
    showConnNotice(null);
    if (f.playerId !== session.playerId) {
      logSys('warning', `welcome is for ${str(f.playerId)}, the token is for ${session.playerId}`, undefined, true);
    }
    if (f.protocol !== 1) {
      showConnNotice('info', `The server speaks protocol ${str(f.protocol)}; this console was written for protocol 1.`);
    }
    // The server's state wins over what this page remembers.
    const state = f.state && typeof f.state === 'object' ? f.state : {};
    const had = view.ticket;
    if (had?.status === 'searching' && state.ticket?.ticketId !== had.ticketId && !state.match) {
      showNotice('ticket-notice', 'warn', `The server no longer has your searching ticket ${str(had.ticketId)}: it ended while you were away, or the server restarted without keeping its state. Join again.`);
    }
    setTicket(state.ticket && typeof state.ticket === 'object' ? state.ticket : null);
    if (state.match && typeof state.match === 'object') {
      onMatchReady(state.match, 'welcome');
    } else if (view.match?.phase === 'found' && state.ticket?.status !== 'matched') {
      view.match = null; // the allocation ended while we were away
      renderMatch();
    } else if (view.match && queuedSince(state.ticket, view.match)) {
      // Queued again since this match (in another tab with this token):
      // it is history now, as after joinQueue here.
      view.match = null;
      renderMatch();
    }
    savePlayerState();
    restoreLobby(state.lobby);
    setConn('ready', 'Connected');
    renderFacts();
    ping(); // measures the round trip and the server's clock offset
    if (!view.lobby) refreshLobbyList(true);
  }

  // queuedSince: the ticket t was created after the match m reached this
  // page, so m is an earlier round.
  function queuedSince(t, m) {
    if (!t || t.status !== 'searching' || !m || m.phase === 'found') return false;
    const created = Date.parse(str(t.createdAt));
    return !Number.isNaN(created) && m.receivedAt > 0 && created - view.clockOffset > m.receivedAt;
  }

  function onMatchFound(f) {
    if (view.match?.phase === 'ready' && view.match.ready.matchId === f.matchId) return;
    view.match = { phase: 'found', found: f, source: 'live', receivedAt: Date.now() };
    savePlayerState();
    renderMatch();
    $('match-live').textContent = 'Match found. Allocating a party.';
  }

  // onMatchReady shows a match.ready from source 'live' (an event) or
  // 'welcome' (welcome.state.match). The server may send the same match
  // again (docs/protocol.md: key on matchId): it keeps its first arrival.
  function onMatchReady(f, source) {
    if (!f || typeof f !== 'object') return;
    const same = view.match?.phase === 'ready' && view.match.ready?.matchId === f.matchId ? view.match : null;
    let readyAfterMs = same?.readyAfterMs ?? 0;
    if (!same && source === 'live' && view.ticket?.createdAt) {
      const created = Date.parse(view.ticket.createdAt);
      if (!Number.isNaN(created)) readyAfterMs = Date.now() + view.clockOffset - created;
    }
    view.match = {
      phase: 'ready', found: view.match?.found, ready: f, source,
      receivedAt: same?.receivedAt ?? Date.now(), readyAfterMs,
    };
    remember(f.matchId, 'ready', `party ${str(f.partyId)}`, { partyId: str(f.partyId), invitationId: str(f.invitationId) });
    savePlayerState();
    renderMatch();
    $('match-live').textContent = `Match ready${source === 'welcome' ? ', restored on reconnect' : ''}.`;
  }

  // What a match.failed reason means, for a player. Today's only reason is
  // allocation_failed; clients treat any reason the same way.
  const FAIL_REASONS = {
    allocation_failed: 'the party network could not be allocated (PlayFab refused or did not answer in time)',
  };

  function failedText(f) {
    const reason = str(f.reason) || 'no reason given';
    const means = FAIL_REASONS[f.reason];
    return means ? `${reason}: ${means}` : reason;
  }

  function requeueText(f) {
    return f.requeued
      ? 'Your ticket is back in the queue, keeping its place (its original wait time). It is held for a short moment (the server\'s requeue hold) before it can be matched again.'
      : 'Not requeued (you had left the queue, or the ticket could not go back): join again.';
  }

  function onMatchFailed(f) {
    view.match = { phase: 'failed', found: view.match?.found, failed: f, source: 'live', receivedAt: Date.now() };
    remember(f.matchId, 'failed', `${str(f.reason) || 'failed'}${f.requeued ? ', requeued' : ', not requeued'}`);
    savePlayerState();
    renderMatch();
    $('match-live').textContent = `Match failed: ${str(f.reason) || 'no reason given'}. ${f.requeued ? 'You are back in the queue, after a short hold.' : 'Join again.'}`;
  }

  function remember(matchId, outcome, detail, extra = {}) {
    view.history = view.history.filter((h) => h.matchId !== str(matchId));
    view.history.unshift({ matchId: str(matchId), outcome, detail, ...extra, at: new Date() });
    view.history.length = Math.min(view.history.length, 6);
  }

  // savePlayerState keeps what this player saw in the tab's sessionStorage,
  // under their player id (PLAYER_KEY).
  function savePlayerState() {
    if (!session) return;
    const m = view.match;
    saveJSON(sessionStorage, PLAYER_KEY + session.playerId, {
      match: m ? {
        phase: m.phase, found: m.found ?? null, ready: m.ready ?? null, failed: m.failed ?? null,
        source: m.source === 'stored' ? m.savedFrom : m.source, receivedAt: m.receivedAt ?? 0, readyAfterMs: m.readyAfterMs ?? 0,
      } : null,
      history: view.history.map((h) => ({ ...h, at: h.at.getTime() })),
      ticket: view.ticket,
      ticketEndedAt: view.ticketEndedAt,
      asked: view.joinRequest,
    });
  }

  // loadPlayerState puts back what savePlayerState kept, before the socket
  // opens; welcome.state then corrects it (the server's word wins).
  function loadPlayerState() {
    if (!session) return;
    const saved = loadJSON(sessionStorage, PLAYER_KEY + session.playerId);
    if (!saved || typeof saved !== 'object') return;
    const m = saved.match;
    if (m && typeof m === 'object' && ['found', 'ready', 'failed'].includes(m.phase) && m[m.phase] && typeof m[m.phase] === 'object') {
      view.match = { ...m, savedFrom: str(m.source) || 'live', source: 'stored' };
    }
    if (Array.isArray(saved.history)) {
      view.history = saved.history
        .filter((h) => h && typeof h === 'object' && typeof h.matchId === 'string')
        .map((h) => ({ ...h, at: new Date(Number(h.at) || Date.now()) }))
        .slice(0, 6);
    }
    if (saved.ticket && typeof saved.ticket === 'object' && typeof saved.ticket.ticketId === 'string') {
      view.ticket = saved.ticket;
      view.ticketEndedAt = Number(saved.ticketEndedAt) || 0;
    }
    if (saved.asked && typeof saved.asked === 'object' && typeof saved.asked.ticketId === 'string') view.joinRequest = saved.asked;
  }

  function onSessionReplaced() {
    showConnNotice('warn', 'This player just connected somewhere else; this socket is being closed.');
  }

  function setTicket(t) {
    if (t != null && typeof t !== 'object') t = null;
    const old = view.ticket;
    if (t && old && t.ticketId === old.ticketId && !t.createdAt) {
      t = { ...t, createdAt: old.createdAt }; // queue.state after a match omits it
    }
    if (t?.status === 'searching') view.ticketEndedAt = 0;
    else if (t && (!old || old.ticketId !== t.ticketId || old.status === 'searching')) view.ticketEndedAt = Date.now();
    view.ticket = t;
    if (view.joinRequest && !t) view.joinRequest = null;
    savePlayerState();
    renderTicket();
    renderControls();
  }

  // ---------------------------------------------------------------- actions

  async function signInWithDevToken(ev) {
    ev.preventDefault();
    const name = $('name').value.trim();
    if (runes(name) > MAX_NAME) {
      showConnNotice('error', `The name can be at most ${MAX_NAME} characters; it has ${runes(name)}.`);
      $('name').focus();
      return;
    }
    $('signin-button').disabled = true;
    try {
      const t = await fetchDevToken(name, '');
      startSession({ name: tokenClaims(t.token)?.name ?? name, playerId: t.playerId, token: t.token, source: 'dev' });
    } catch (err) {
      showConnNotice('error', err.message);
    } finally {
      $('signin-button').disabled = false;
    }
  }

  function signInWithToken() {
    const token = $('token-input').value.trim();
    const claims = tokenClaims(token);
    if (!claims || typeof claims.sub !== 'string' || !claims.sub) {
      showConnNotice('error', 'That is not a JWT with a sub claim.');
      $('token-input').focus();
      return;
    }
    $('token-input').value = '';
    renderTokenCheck();
    startSession({ name: str(claims.name) || claims.sub, playerId: claims.sub, token, source: 'pasted' });
  }

  // renderTokenCheck says what a pasted token claims, as it is typed: who,
  // and whether its exp and nbf let it in now (by this device's clock; the
  // server decides).
  function renderTokenCheck() {
    const out = $('token-check');
    const token = $('token-input').value.trim();
    if (!token) {
      out.textContent = '';
      out.dataset.state = '';
      return;
    }
    const claims = tokenClaims(token);
    const timing = tokenTiming(claims);
    out.dataset.state = timing.state;
    if (!claims) {
      out.textContent = 'Not a JWT: three base64url parts separated by dots, the middle one JSON claims.';
      return;
    }
    const who = typeof claims.sub === 'string' && claims.sub ? `Player ${claims.sub}${claims.name ? ` (${str(claims.name)})` : ''}` : 'No sub claim: the server refuses it';
    const flag = { expired: 'Expired: ', early: 'Not yet valid: ', noexp: 'No expiry: ' }[timing.state] ?? '';
    out.textContent = `${who}. ${flag}${timing.text.replace(/^(expired|not valid yet:) /, '')}.`;
  }

  function renderNameCount() {
    const n = runes($('name').value.trim());
    const out = $('name-count');
    out.textContent = n ? `${n} / ${MAX_NAME} characters` : '';
    out.classList.toggle('over', n > MAX_NAME);
    $('name').setAttribute('aria-invalid', n > MAX_NAME ? 'true' : 'false');
  }

  function startSession(s) {
    session = s;
    saveSession();
    loadPlayerState(); // a token of a player this tab has seen before
    renderAll();
    conn.attempt = 0;
    conn.tokenRenewals = 0;
    showConnNotice(null);
    renderIdentity();
    connect();
    $('connect-button').focus();
  }

  function saveSession() {
    saveJSON(sessionStorage, SESSION_KEY, session);
  }

  async function newPlayer() {
    // Abandoning this identity: take its ticket out of the queue first, so
    // no one is matched with a player who is gone for good.
    // The same goes for their lobby place: the others should not wait for
    // a grace period to end.
    if (view.ticket?.status === 'searching' && conn.welcomed && !view.lobby) {
      try { await request('queue.leave'); } catch { /* best effort */ }
    }
    if (view.lobby && conn.welcomed) {
      try { await request('lobby.leave'); } catch { /* best effort */ }
    }
    disconnect('new player');
    if (session) saveJSON(sessionStorage, PLAYER_KEY + session.playerId, null);
    session = null;
    saveSession();
    Object.assign(view, {
      node: '', protocol: null, ticket: null, ticketEndedAt: 0, joinRequest: null, match: null, history: [], pings: [], clockOffset: 0,
      lobby: null, chat: [], chatLobbyId: '', publicLobbies: null, listError: '', listAt: 0,
    });
    view.lobbyLeft.clear();
    view.lobbyAway.clear();
    conn.attempt = 0;
    showQueueNotice(null);
    showNotice('ticket-notice', null);
    showLobbyNotice(null);
    renderAll();
    $('name').value = '';
    renderNameCount();
    $('name').focus();
  }

  async function useAnotherToken() {
    await newPlayer();
    $('paste-token').open = true;
    $('token-input').focus();
  }

  function toggleConnection() {
    if (conn.ws || conn.retryTimer || connActive()) disconnect('disconnected by user');
    else {
      conn.attempt = 0;
      conn.tokenRenewals = 0;
      connect();
    }
  }

  async function joinQueue(ev) {
    ev.preventDefault();
    const fields = { queue: $('queue').value };
    const skillInput = $('skill');
    if (skillInput.validity.badInput) {
      showQueueNotice('error', 'Skill must be a number.');
      skillInput.focus();
      return;
    }
    if (skillInput.value.trim() !== '') {
      const skill = Number(skillInput.value);
      if (!Number.isFinite(skill)) {
        showQueueNotice('error', 'Skill must be a finite number.');
        skillInput.focus();
        return;
      }
      fields.skill = skill;
    }
    if (view.regionOrder.length) fields.regions = view.regionOrder.slice();
    await busy(async () => {
      try {
        const data = await request('queue.join', fields);
        showQueueNotice(null);
        showNotice('ticket-notice', null);
        if (view.match?.phase !== 'found') {
          view.match = null; // the last match stays in the history
          renderMatch();
        }
        const eta = Number(data.ticket?.estimatedWaitMs);
        view.joinRequest = {
          ticketId: str(data.ticket?.ticketId), queue: fields.queue, skill: fields.skill, regions: fields.regions,
          estimatedWaitMs: data.ticket?.estimatedWaitMs != null && Number.isFinite(eta) ? eta : undefined, at: Date.now(),
        };
        setTicket(data.ticket ?? null);
        announce(`Joined queue ${fields.queue}.`);
      } catch (err) {
        showQueueNotice('error', `Could not join: ${err.code}: ${err.message}`);
      }
    });
  }

  async function leaveQueue() {
    await busy(async () => {
      try {
        await request('queue.leave');
        showQueueNotice(null);
        announce('Left the queue.');
      } catch (err) {
        if (err.code === 'not_found') {
          setTicket(null);
          showQueueNotice('info', 'You were not in a queue.');
        } else {
          showQueueNotice('error', `Could not leave: ${err.code}: ${err.message}`);
        }
      }
    });
  }

  async function busy(fn) {
    view.busy = true;
    renderControls();
    try {
      await fn();
    } finally {
      view.busy = false;
      renderControls();
    }
  }

  async function ping() {
    const started = performance.now();
    try {
      const data = await request('ping');
      const rtt = performance.now() - started;
      view.pings.push(rtt);
      if (view.pings.length > 50) view.pings.shift();
      const serverTime = Date.parse(str(data.serverTime));
      if (!Number.isNaN(serverTime)) view.clockOffset = serverTime - (Date.now() - rtt / 2);
      $('ping-last').textContent = `round trip ${fmtMs(rtt)}`;
      renderIdentity(); // the token's expiry, by the server's clock now
      renderTokenCheck();
    } catch (err) {
      $('ping-last').textContent = `ping failed: ${err.message}`;
    }
    renderPings();
  }

  function sendRaw() {
    const text = $('raw-text').value;
    let frame = null;
    try {
      const parsed = JSON.parse(text);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) frame = parsed;
    } catch { /* sent as typed: testing the server's bad_request is the point */ }
    try {
      sendText(text, frame);
      if (typeof frame?.id === 'string') {
        rawPending.set(frame.id, { type: str(frame.type) || '(no type)', sentAt: performance.now() });
        if (rawPending.size > 100) rawPending.delete(rawPending.keys().next().value);
      }
    } catch (err) {
      showConnNotice('error', `Not sent: ${err.message}`);
    }
  }

  function renderRawSize() {
    const bytes = new TextEncoder().encode($('raw-text').value).length;
    $('raw-size').textContent = `${bytes.toLocaleString()} bytes; the server's limit is 4,096 unless configured otherwise (LOBBYD_MAX_FRAME_BYTES).`;
    $('raw-size').classList.toggle('over', bytes > 4096);
  }

  function showNotice(id, kind, text, ttl) {
    fillNotice($(id), kind, text ?? '', [], ttl);
  }

  const showQueueNotice = (kind, text) => showNotice('queue-notice', kind, text);

  // ---------------------------------------------------------------- queues

  async function refreshQueues() {
    if (document.hidden) return;
    try {
      const res = await fetch('v1/queues', { cache: 'no-store' });
      const body = await res.json().catch(() => null);
      if (!res.ok || !Array.isArray(body?.queues)) {
        const why = typeof body?.error === 'string' ? body.error : str(body?.error?.message);
        throw new Error(`HTTP ${res.status}${why ? `: ${why}` : ''}`);
      }
      view.queues = body.queues.filter((q) => q && typeof q.name === 'string');
      view.queuesError = '';
    } catch (err) {
      view.queuesError = err.message === 'Failed to fetch' ? 'server unreachable' : err.message;
    }
    renderQueues();
  }

  function selectedQueue() {
    return view.queues.find((q) => q.name === $('queue').value) ?? null;
  }

  function renderQueues() {
    const select = $('queue');
    const names = view.queues.map((q) => q.name);
    const current = [...select.options].map((o) => o.value);
    if (names.join('\n') !== current.join('\n')) {
      const keep = view.lobby?.queue || select.value || queueForm.queue || prefs.queue;
      select.replaceChildren(...names.map((n) => el('option', { value: n, text: n })));
      if (names.includes(keep)) select.value = keep;
      renderRegions();
    }
    select.disabled = names.length === 0;
    const q = selectedQueue();
    const depth = $('queue-depth');
    depth.replaceChildren();
    if (view.queuesError) {
      depth.append(`Queue list unavailable (${view.queuesError}); retrying.`);
    } else if (!q) {
      depth.append(names.length ? '' : 'The server has no queues configured.');
    } else {
      const tickets = Number(q.depth) || 0;
      depth.append(el('strong', { text: String(tickets) }), ` ${tickets === 1 ? 'ticket' : 'tickets'} searching now · ${str(q.maxUsers)} players per match`);
    }
    if (q && str(q.regions) !== $('regions').dataset.regions) renderRegions();
    renderLobbyQueuePickers();
    renderControls();
  }

  function renderRegions() {
    const q = selectedQueue();
    const regions = Array.isArray(q?.regions) ? q.regions.map(str) : [];
    const box = $('regions');
    box.dataset.regions = str(q?.regions);
    if (q) view.regionOrder = view.regionOrder.filter((r) => regions.includes(r)); // before the list loads, keep them
    box.replaceChildren(...regions.map((region) => {
      const input = el('input', {
        type: 'checkbox', value: region, checked: view.regionOrder.includes(region),
        onchange: () => {
          view.regionOrder = view.regionOrder.filter((r) => r !== region);
          if (input.checked) view.regionOrder.push(region);
          queueForm.regions = view.regionOrder.slice();
          saveQueueForm();
          renderRegionRanks();
        },
      });
      return el('label', { class: 'region' }, input, el('span', { text: region }), el('span', { class: 'rank', hidden: true }));
    }));
    $('regions-field').hidden = regions.length === 0;
    renderRegionRanks();
  }

  function renderRegionRanks() {
    for (const label of $('regions').children) {
      const region = label.querySelector('input').value;
      const rank = view.regionOrder.indexOf(region);
      const badge = label.querySelector('.rank');
      badge.hidden = rank < 0;
      badge.replaceChildren(el('span', { class: 'visually-hidden', text: ', preference ' }), String(rank + 1));
    }
  }

  // ---------------------------------------------------------------- rendering

  function renderAll() {
    renderIdentity();
    renderFacts();
    renderTicket();
    renderMatch();
    renderPings();
    renderLobby();
    renderControls();
  }

  function renderFacts() {
    $('fact-node').textContent = view.node || '–';
    $('fact-player').textContent = session?.playerId ?? '–';
    $('fact-protocol').textContent = view.protocol == null ? '–' : str(view.protocol);
  }

  function renderIdentity() {
    const signedIn = !!session;
    $('signin').hidden = signedIn;
    $('identity').hidden = !signedIn;
    $('ping-box').hidden = !signedIn;
    renderFacts();
    if (!signedIn) return;
    $('id-name').textContent = session.name || '(none)';
    $('id-player').textContent = session.playerId;
    const timing = tokenTiming(tokenClaims(session.token));
    const box = $('id-token');
    box.dataset.state = timing.state;
    box.replaceChildren(
      `${session.source === 'dev' ? 'development token' : 'your token'}, `,
      timing.state === 'ok' ? timing.text : el('strong', { class: 'token-flag', text: timing.text }));
  }

  function renderControls() {
    const online = conn.welcomed;
    const searching = view.ticket?.status === 'searching';
    const allocating = view.match?.phase === 'found';
    const lobby = view.lobby;
    if (lobby) {
      // A lobby queues as one ticket, in its own queue, sent by its owner
      // once every member is ready; any member can take it out.
      const queued = lobby.status === 'queued';
      const owner = lobby.ownerId === session?.playerId;
      const waiting = lobbyMembers(lobby).filter((m) => !m.ready);
      $('join-button').disabled = !online || view.busy || !owner || queued || waiting.length > 0 || allocating || !$('queue').value;
      $('leave-button').disabled = !online || view.busy || !(queued || searching);
      $('join-button').textContent = 'Queue the lobby';
      $('leave-button').textContent = queued ? 'Leave queue (whole lobby)' : 'Leave queue';
      renderQueueLobbyHint(lobby, { owner, queued, waiting, allocating });
    } else {
      $('join-button').disabled = !online || view.busy || searching || allocating || !$('queue').value;
      $('leave-button').disabled = !online || view.busy || !searching;
      $('join-button').textContent = 'Join queue';
      $('leave-button').textContent = 'Leave queue';
      $('queue-lobby-hint').hidden = true;
    }
    $('queue').disabled = view.queues.length === 0 || !!lobby;
    $('queue-offline').hidden = online;
    renderLobbyControls();
    $('ping-button').disabled = !online;
    $('raw-send').disabled = !(conn.ws && conn.opened);
    // The button says what pressing it does now.
    $('connect-button').textContent = conn.state === 'ready' || conn.state === 'open' ? 'Disconnect'
      : connActive() ? (conn.attempt ? 'Stop reconnecting' : 'Cancel') : 'Connect';
    const ready = view.match?.phase === 'ready';
    document.title = `${ready ? '● Match ready · ' : ''}${$('conn-text').textContent} · lobbyd console`;
  }

  function renderTicket() {
    const t = view.ticket;
    $('ticket').hidden = !t;
    $('match-empty').hidden = !!(t || view.match);
    renderStatusBar();
    if (!t) return;
    const status = str(t.status) || 'unknown';
    const badge = $('ticket-status');
    badge.className = `badge ${status.replace(/[^a-z]/g, '')}`;
    badge.textContent = status;
    $('ticket-id').textContent = str(t.ticketId);
    $('ticket-queue').textContent = str(t.queue);
    const players = Array.isArray(t.players) ? t.players : [];
    $('ticket-players').replaceChildren(...ticketPlayers(players));
    const eta = ticketEstimate(t);
    $('ticket-eta').hidden = $('ticket-eta-label').hidden = !eta;
    $('ticket-eta').textContent = eta ? eta.long : '';
    const asked = askedFor(t);
    const askedText = asked ? [
      asked.skill !== undefined ? `skill ${asked.skill}` : '',
      asked.regions ? `regions ${asked.regions.join(' > ')}` : 'any region',
    ].filter(Boolean).join(' · ') : '';
    $('ticket-asked').hidden = $('ticket-asked-label').hidden = !askedText;
    $('ticket-asked').textContent = askedText;
    renderTicketElapsed();
  }

  // askedFor: what this page queued the ticket with, if it did.
  function askedFor(t) {
    return t && view.joinRequest?.ticketId === t.ticketId ? view.joinRequest : null;
  }

  // ticketEstimate: the ticket's expected wait, {short, long}, or null.
  // The queue.join reply's estimatedWaitMs is the queue's recent wait when
  // the ticket joined (kept in joinRequest: no event repeats it); a member
  // whose lobby owner queued gets none, and sees the queue's figure now.
  function ticketEstimate(t) {
    const asked = askedFor(t);
    const own = t.estimatedWaitMs != null ? Number(t.estimatedWaitMs) : asked?.estimatedWaitMs != null ? Number(asked.estimatedWaitMs) : NaN;
    if (own >= 0) return { short: fmtWait(own), long: `${fmtWait(own)} (the queue's recent wait when you joined)` };
    if (t.status !== 'searching') return null;
    const q = view.queues.find((x) => x.name === t.queue);
    const now = q?.estimatedWaitMs != null ? Number(q.estimatedWaitMs) : NaN;
    if (now >= 0) return { short: fmtWait(now), long: `${fmtWait(now)} (the queue's recent wait now)` };
    return { short: '', long: 'none yet: the queue has no recent matches to estimate from' };
  }

  function ticketWaited(t) {
    const created = Date.parse(str(t?.createdAt));
    if (Number.isNaN(created)) return '';
    const end = t.status === 'searching' ? Date.now() : view.ticketEndedAt || Date.now();
    return fmtDuration(end + view.clockOffset - created);
  }

  function renderTicketElapsed() {
    renderStatusBar();
    const t = view.ticket;
    if (!t) return;
    const waited = ticketWaited(t);
    $('ticket-elapsed').textContent = !waited ? '' : t.status === 'searching' ? `for ${waited}` : `after ${waited}`;
  }

  function renderPings() {
    const p = view.pings;
    $('ping-stats').hidden = p.length === 0;
    if (!p.length) {
      $('ping-last').textContent = 'no round trip yet';
      return;
    }
    $('ping-min').textContent = fmtMs(Math.min(...p));
    $('ping-max').textContent = fmtMs(Math.max(...p));
    $('ping-avg').textContent = fmtMs(p.reduce((a, b) => a + b, 0) / p.length);
    $('ping-n').textContent = String(p.length);
  }

  function playerList(players) {
    const list = Array.isArray(players) ? players : [];
    return el('ol', { class: 'players' }, list.map((p) => el('li', {},
      el('span', { class: 'name', text: str(p?.name) || '(no name)' }),
      el('code', { text: str(p?.playerId) }),
      p?.playerId === session?.playerId ? el('span', { class: 'badge you', text: 'you' }) : null)));
  }

  function kv(rows) {
    return el('dl', { class: 'kv' }, rows.filter(Boolean).map(([term, ...value]) => [el('dt', { text: term }), el('dd', {}, value)]));
  }

  function idRow(term, value) {
    const v = str(value);
    return [term, el('code', { text: v || '–', 'data-field': term }), v ? copyButton(v, term) : null];
  }

  function dismissMatch() {
    view.match = null;
    if (view.ticket?.status !== 'searching') view.ticket = null;
    savePlayerState();
    renderTicket();
    renderMatch();
    $('queue').focus();
  }

  function renderHistory() {
    const shown = view.match?.ready?.matchId ?? view.match?.failed?.matchId;
    const rows = view.history.filter((h) => h.matchId !== shown).slice(0, 5);
    $('history').hidden = rows.length === 0;
    $('history-list').replaceChildren(...rows.map((h) => el('li', { 'data-match': h.matchId },
      el('span', { class: 'time', text: clockTime(h.at) }),
      el('span', { class: `badge ${h.outcome}`, text: h.outcome }),
      el('span', { class: 'history-ids' },
        el('span', { class: 'history-id' }, el('span', { class: 'hint', text: 'match ' }), el('code', { text: h.matchId })),
        h.partyId ? el('span', { class: 'history-id' }, el('span', { class: 'hint', text: 'party ' }), el('code', { class: 'party', text: h.partyId }), copyButton(h.partyId, 'party ID')) : null,
        h.invitationId ? el('span', { class: 'history-id' }, el('span', { class: 'hint', text: 'invitation ' }), el('code', { class: 'invitation', text: h.invitationId }), copyButton(h.invitationId, 'invitation ID')) : null,
        h.outcome !== 'ready' ? el('span', { class: 'hint', text: h.detail }) : null))));
  }

  // shortId is an id's start, enough to tell it from another at a glance.
  function shortId(id) {
    const v = str(id);
    return v.length > 9 ? `${v.slice(0, 8)}…` : v;
  }

  // Where a shown match came from, for its card: [badge, sentence].
  const MATCH_SOURCES = {
    live: [null, 'live, on this connection'],
    welcome: ['restored on reconnect', 'in welcome.state.match when this page (re)connected: it had not reached you before'],
    stored: ['saved in this tab', 'kept in this tab (sessionStorage) across a reload: the server sends a delivered match.ready only once'],
  };

  // renderStatusBar fills the sticky bar: connection (setConn fills it),
  // ticket and match, in words short enough for a phone.
  function renderStatusBar() {
    const t = view.ticket;
    const item = $('status-ticket');
    let text = 'none';
    let state = 'none';
    if (t) {
      state = str(t.status) || 'unknown';
      const waited = ticketWaited(t);
      const eta = t.status === 'searching' ? ticketEstimate(t)?.short : '';
      text = [state, waited && t.status === 'searching' ? waited : '', eta ? `ETA ${eta.replace(/^about /, '~')}` : ''].filter(Boolean).join(' · ');
    }
    item.dataset.state = state.replace(/[^a-z]/g, '');
    $('status-ticket-text').textContent = text;
    item.title = `Ticket: ${text}`;

    const m = view.match;
    const mItem = $('status-match');
    let mText = 'none';
    if (m?.phase === 'found') mText = 'found · allocating…';
    else if (m?.phase === 'ready') mText = `ready · party ${shortId(m.ready.partyId)}`;
    else if (m?.phase === 'failed') mText = `failed · ${str(m.failed.reason) || 'no reason'}${m.failed.requeued ? ' · requeued' : ''}`;
    mItem.dataset.state = m?.phase ?? 'none';
    mItem.dataset.source = m?.source ?? '';
    $('status-match-text').textContent = mText;
    mItem.title = `Match: ${m?.phase === 'ready' ? `ready, party ${str(m.ready.partyId)}` : mText}${m?.source === 'stored' ? ' (saved in this tab)' : ''}`;
  }

  function renderMatch() {
    const m = view.match;
    const box = $('match');
    renderHistory();
    renderStatusBar();
    box.replaceChildren();
    $('match-empty').hidden = !!(m || view.ticket);
    renderControls();
    if (!m) return;
    const dismiss = el('button', { class: 'small', type: 'button', text: 'Dismiss', onclick: dismissMatch });
    const [badge, how] = MATCH_SOURCES[m.source] ?? MATCH_SOURCES.live;
    const from = m.source === 'stored' ? MATCH_SOURCES[m.savedFrom]?.[1] : '';
    const received = m.receivedAt ? ['Received', el('span', { class: 'received' },
      `${clockTime(new Date(m.receivedAt))}, ${how}`, from ? `; first ${from}` : '')] : null;
    const card = (cls, title, rows, extra) => el('article', {
      class: `match-card ${cls}`, 'aria-labelledby': 'match-card-title', 'data-source': m.source ?? 'live',
    }, el('header', {},
      el('h3', { id: 'match-card-title' }, title, badge ? el('span', { class: `badge source ${m.source}`, text: badge }) : null),
      extra), kv(rows));

    if (m.phase === 'found') {
      const f = m.found;
      box.append(card('found', 'Match found',
        [idRow('Match ID', f.matchId), ['Queue', str(f.queue)], ['Players', playerList(f.players)], received],
        el('span', { class: 'hint', text: 'allocating a party…' })));
      return;
    }

    if (m.phase === 'failed') {
      const f = m.failed;
      box.append(card('failed', 'Match failed', [
        idRow('Match ID', f.matchId),
        ['Cause', el('span', { class: 'fail-reason', text: failedText(f) })],
        ['Next', el('span', { class: 'fail-next', text: requeueText(f) })],
        received,
      ], dismiss));
      return;
    }

    const r = m.ready;
    const descriptor = str(r.networkDescriptor);
    const regions = Array.isArray(r.regions) ? r.regions.map(str) : [];
    box.append(card('ready', 'Match ready', [
      idRow('Match ID', r.matchId),
      ['Queue', str(r.queue)],
      idRow('Party ID', r.partyId),
      idRow('Invitation ID', r.invitationId),
      ['Regions', regions.length ? el('div', { class: 'regions-pref' },
        el('ol', { class: 'chips region-order', 'aria-label': 'Regions in preference order' },
          regions.map((g, i) => el('li', { class: 'chip' }, el('span', { class: 'rank-n', text: `${i + 1}` }), ' ', g))),
        el('p', { class: 'hint', text: regions.length > 1
          ? 'In preference order, as sent to PlayFab, which allocates in the first one available. PlayFab does not say which one it picked.'
          : 'The only acceptable region, as sent to PlayFab.' })) : '–'],
      ['Players', playerList(r.players)],
      ['Network descriptor', el('div', { class: 'descriptor' },
        el('div', { class: 'line' },
          el('code', { text: descriptor ? middleTruncate(descriptor) : '–', title: `${descriptor.length} characters` }),
          descriptor ? copyButton(descriptor, 'network descriptor') : null),
        descriptor.length > 37 ? el('details', {}, el('summary', { text: `Show all ${descriptor.length} characters` }),
          el('pre', { text: descriptor, tabIndex: 0, 'aria-label': 'Network descriptor' })) : null)],
      m.readyAfterMs > 0 ? ['Ready after', `${(m.readyAfterMs / 1000).toFixed(1)} s from joining the queue`] : null,
      received,
    ], dismiss));
  }

  // ---------------------------------------------------------------- lobby

  // Join codes are 6 characters from an alphabet without 0/O and 1/I.
  const CODE_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  const CODE_LENGTH = 6;
  const MAX_PROPS = 16;
  const MAX_PROP_KEY = 32;
  const MAX_PROP_VALUE = 256;
  const CHAT_CAP = 200;
  const MAX_CHAT = 500; // characters (code points) in a lobby.chat
  const LIST_LIMIT = 50;
  const LIST_REFRESH_MS = 5000;
  const CHAT_HOLD_MS = 1200; // after rate_limited: the server refills about one message a second

  const lobbyMembers = (l) => (Array.isArray(l?.members) ? l.members.filter((m) => m && typeof m === 'object') : []);
  const memberName = (m) => str(m?.name) || str(m?.playerId) || '(no name)';
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

  function lobbyOwner(l) {
    return lobbyMembers(l).find((m) => m.playerId === l?.ownerId) ?? null;
  }

  function myMember(l) {
    return lobbyMembers(l).find((m) => m.playerId === session?.playerId) ?? null;
  }

  function showLobbyNotice(kind, text, actions = [], ttl) {
    fillNotice($('lobby-notice'), kind, text ?? '', actions, ttl);
  }

  // errText is how a failed request reads in a notice: the server's words,
  // then its code, for QA to match against docs/protocol.md.
  function errText(err) {
    return `${err.message} (${err.code})`;
  }

  // normalizeCode reads a join code as typed: any case, spaces and dashes
  // ignored. It returns {code} or {error}.
  function normalizeCode(typed) {
    const code = typed.replace(/[\s-]/g, '').toUpperCase();
    if (!code) return { error: 'Type the 6-character join code.' };
    const bad = [...new Set([...code].filter((c) => !CODE_ALPHABET.includes(c)))];
    if (bad.length) {
      const lookalike = bad.some((c) => '0O1I'.includes(c)) ? ' Codes never use O, I, 0 or 1.' : '';
      return { error: `A join code cannot contain ${bad.map((c) => `“${c}”`).join(', ')}.${lookalike}` };
    }
    if (code.length !== CODE_LENGTH) return { error: `A join code has ${CODE_LENGTH} characters; that one has ${code.length}.` };
    return { code };
  }

  // keepFocus re-renders a container without losing the keyboard focus: the
  // element with the same data-focus-key gets it back, or the container.
  function keepFocus(container, render) {
    const active = document.activeElement;
    const key = active && container.contains(active) ? active.dataset.focusKey : undefined;
    const had = active && container.contains(active);
    render();
    if (!had) return;
    const again = key ? container.querySelector(`[data-focus-key="${CSS.escape(key)}"]`) : null;
    if (again && !again.disabled) again.focus();
    else container.focus();
  }

  function crownIcon() {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('class', 'crown');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    const path = document.createElementNS(ns, 'path');
    path.setAttribute('d', 'M2 7.5l5.2 4.2L12 4l4.8 7.7L22 7.5 19.8 18H4.2zM4.2 19.5h15.6V22H4.2z');
    path.setAttribute('fill', 'currentColor');
    svg.append(path);
    return svg;
  }

  function propChips(props) {
    const entries = props && typeof props === 'object' ? Object.entries(props) : [];
    if (!entries.length) return el('span', { class: 'hint inline', text: 'none' });
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return el('span', { class: 'chips' }, entries.map(([k, v]) => el('span', { class: 'chip prop' },
      el('span', { class: 'prop-key', text: k }), el('span', { class: 'prop-eq', 'aria-hidden': 'true', text: '=' }),
      el('span', { class: 'visually-hidden', text: ' is ' }), el('span', { class: 'prop-value', text: str(v) }))));
  }

  // ---- props editor: key/value rows, used by the create and settings forms

  function addPropRow(box, key = '', value = '', focus = false) {
    if (box.children.length >= MAX_PROPS) return;
    // No maxLength: it counts UTF-16 units; readProps counts characters.
    const keyInput = el('input', { type: 'text', class: 'prop-key-input', value: key, placeholder: 'key', autocomplete: 'off' });
    const valueInput = el('input', { type: 'text', class: 'prop-value-input', value, placeholder: 'value', autocomplete: 'off' });
    keyInput.spellcheck = false;
    valueInput.spellcheck = false;
    const row = el('div', { class: 'prop-row' }, keyInput, el('span', { class: 'prop-eq', 'aria-hidden': 'true', text: '=' }), valueInput);
    row.append(el('button', {
      class: 'small', type: 'button', text: 'Remove',
      onclick: () => {
        const next = row.nextElementSibling ?? row.previousElementSibling;
        row.remove();
        relabelProps(box);
        box.dispatchEvent(new Event('input', { bubbles: true }));
        (next?.querySelector('input') ?? box.parentElement.querySelector('button[id$="addprop"]'))?.focus();
      },
    }));
    box.append(row);
    relabelProps(box);
    if (focus) keyInput.focus();
  }

  function relabelProps(box) {
    [...box.children].forEach((row, i) => {
      const [k, v] = row.querySelectorAll('input');
      k.setAttribute('aria-label', `Property ${i + 1} key`);
      v.setAttribute('aria-label', `Property ${i + 1} value`);
      row.querySelector('button').setAttribute('aria-label', `Remove property ${i + 1}`);
    });
    const add = box.parentElement.querySelector('button[id$="addprop"]');
    if (add) {
      add.disabled = box.children.length >= MAX_PROPS;
      add.textContent = box.children.length >= MAX_PROPS ? `Add property (${MAX_PROPS} at most)` : 'Add property';
    }
  }

  function setPropRows(box, props) {
    box.replaceChildren();
    for (const [k, v] of Object.entries(props && typeof props === 'object' ? props : {})) addPropRow(box, k, str(v));
    relabelProps(box);
  }

  // readProps checks the rows as the server would and returns {props} or
  // {error, input}. Rows with neither key nor value are skipped.
  function readProps(box) {
    const props = {};
    let n = 0;
    for (const [i, row] of [...box.children].entries()) {
      const [k, v] = row.querySelectorAll('input');
      const key = k.value.trim();
      if (!key && !v.value) continue;
      if (!key) return { error: `Property ${i + 1} has a value but no key.`, input: k };
      if (runes(key) > MAX_PROP_KEY) return { error: `Property key “${key}” is longer than ${MAX_PROP_KEY} characters.`, input: k };
      if (runes(v.value) > MAX_PROP_VALUE) return { error: `The value of “${key}” is longer than ${MAX_PROP_VALUE} characters.`, input: v };
      if (Object.hasOwn(props, key)) return { error: `The key “${key}” is there twice.`, input: k };
      props[key] = v.value;
      n++;
    }
    if (n > MAX_PROPS) return { error: `At most ${MAX_PROPS} properties.`, input: null };
    return { props };
  }

  // readMax reads a max-members input: {value} (undefined when empty) or {error}.
  function readMax(input, min, max) {
    if (input.validity.badInput) return { error: 'Max members must be a whole number.' };
    const text = input.value.trim();
    if (!text) return { value: undefined };
    const n = Number(text);
    if (!Number.isInteger(n)) return { error: 'Max members must be a whole number.' };
    if (max && (n < min || n > max)) return { error: `Max members must be between ${min} and ${max}.` };
    return { value: n };
  }

  // mySkill reads the matchmaking panel's Skill field for a lobby request:
  // {skill} (undefined when empty) or {error}. A lobby's ticket skill is the
  // mean of the skills its members gave with lobby.create, lobby.join or
  // lobby.ready.
  function mySkill() {
    const input = $('skill');
    if (input.validity.badInput) return { error: 'Skill must be a number.' };
    if (input.value.trim() === '') return { skill: undefined };
    const skill = Number(input.value);
    return Number.isFinite(skill) ? { skill } : { error: 'Skill must be a finite number.' };
  }

  function withSkill(fields) {
    const { skill, error } = mySkill();
    if (error) {
      showLobbyNotice('error', `${error} (the Skill field in Matchmaking goes with your lobby requests)`);
      $('skill').focus();
      return null;
    }
    if (skill !== undefined) fields.skill = skill;
    return fields;
  }

  function queueMaxUsers(name) {
    const n = Number(view.queues.find((q) => q.name === name)?.maxUsers);
    return n > 0 ? n : 0;
  }

  // ---- the lobby state

  // setLobby takes the server's view of the player's lobby (or null), keeps
  // a timeline of what changed in the chat, and redraws.
  function setLobby(l, how) {
    if (l != null && (typeof l !== 'object' || typeof l.lobbyId !== 'string')) l = null;
    const old = view.lobby;
    // Snapshots of concurrent changes can arrive out of order: every change
    // bumps the lobby's version, so never go back to an older one.
    if (l && old?.lobbyId === l.lobbyId && typeof l.version === 'number' &&
        typeof old.version === 'number' && l.version < old.version) {
      logSys('note', `lobby.state version ${l.version} is older than ${old.version}; ignored`);
      return;
    }
    if (l && how !== 'snapshot') view.lobbyLeft.delete(l.lobbyId);
    if (l && view.chatLobbyId !== l.lobbyId) {
      view.chat = [];
      view.chatLobbyId = l.lobbyId;
      showNotice('chat-notice', null);
    }
    if (l && old?.lobbyId === l.lobbyId) noteLobbyChanges(old, l);
    else if (l) {
      const verb = { created: 'You created this lobby', joined: 'You joined this lobby', restored: 'Back in this lobby (from welcome.state.lobby)' }[how];
      if (verb) addChat({ kind: 'sys', text: `${verb}.` });
    }
    if (!l) {
      view.chatLobbyId = '';
      view.chat = [];
      view.settingsDirty = false;
    }
    const now = Date.now();
    const away = new Map();
    for (const m of lobbyMembers(l)) {
      if (m.connected === false) away.set(m.playerId, view.lobbyAway.get(m.playerId) ?? now);
    }
    view.lobbyAway = away;
    view.lobby = l;
    if (!l !== !old || l?.queue !== old?.queue) syncQueueSelect();
    renderLobby();
    renderTicket();
    renderControls();
    if (!l && old) refreshLobbyList(true);
  }

  // noteLobbyChanges writes what changed between two snapshots of the same
  // lobby into the chat timeline, and says the big ones out loud.
  function noteLobbyChanges(a, b) {
    const me = session?.playerId;
    const before = new Map(lobbyMembers(a).map((m) => [m.playerId, m]));
    const after = new Map(lobbyMembers(b).map((m) => [m.playerId, m]));
    for (const [id, m] of after) {
      const was = before.get(id);
      if (!was) addChat({ kind: 'sys', text: `${memberName(m)} joined.` });
      else if (was.connected !== false && m.connected === false) addChat({ kind: 'sys', text: `${memberName(m)} disconnected; their place is kept for the reconnect grace period.` });
      else if (was.connected === false && m.connected !== false) addChat({ kind: 'sys', text: `${memberName(m)} reconnected.` });
    }
    for (const [id, m] of before) {
      if (after.has(id)) continue;
      const kicked = view.kicking.delete(id);
      const how = kicked ? 'was kicked' : m.connected === false ? 'did not reconnect in time and was removed' : 'left';
      addChat({ kind: 'sys', text: `${memberName(m)} ${how}.` });
    }
    if (a.ownerId !== b.ownerId) {
      const owner = lobbyOwner(b);
      addChat({ kind: 'sys', text: b.ownerId === me ? 'You are now the owner.' : `${memberName(owner)} is now the owner.` });
      if (b.ownerId === me) lobbyLive('You are now the lobby owner.');
    }
    if (a.status !== b.status) {
      const text = {
        queued: `The lobby is queued as one ticket with all ${plural(lobbyMembers(b).length, 'member', 'members')}.`,
        matched: 'Matched! Everyone is set to not ready for the next round.',
        open: a.status === 'queued' ? 'The lobby left the queue.' : 'The lobby is open.',
      }[b.status] ?? `The lobby is ${str(b.status)}.`;
      addChat({ kind: 'sys', text });
      lobbyLive(text);
    }
    const changed = [];
    if (a.visibility !== b.visibility) changed.push(`visibility ${str(b.visibility)}`);
    if (a.maxMembers !== b.maxMembers) changed.push(`max members ${str(b.maxMembers)}`);
    if (JSON.stringify(sortedProps(a.props)) !== JSON.stringify(sortedProps(b.props))) changed.push('properties');
    if (changed.length) addChat({ kind: 'sys', text: `Settings changed: ${changed.join(', ')}.` });
  }

  function sortedProps(props) {
    return Object.entries(props && typeof props === 'object' ? props : {}).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
  }

  function lobbyLive(text) {
    const region = $('lobby-live');
    region.textContent = '';
    setTimeout(() => { region.textContent = text; }, 50);
  }

  // restoreLobby applies welcome.state.lobby: the server's word wins.
  function restoreLobby(l) {
    const had = view.lobby;
    const now = l && typeof l === 'object' && typeof l.lobbyId === 'string' ? l : null;
    if (had && now?.lobbyId !== had.lobbyId) {
      showLobbyNotice('warn', `You are no longer in lobby ${str(had.code)}: the reconnect grace period ended while you were away, or the server forgot it.`);
    }
    if (had && now?.lobbyId === had.lobbyId) addChat({ kind: 'sys', text: 'Reconnected. Messages sent while you were away are not replayed.' });
    setLobby(now, 'restored');
  }

  function onLobbyState(f) {
    const l = f.lobby;
    if (!l || typeof l !== 'object' || typeof l.lobbyId !== 'string') return;
    if (view.lobbyLeft.has(l.lobbyId)) {
      logSys('note', `lobby.state for ${l.lobbyId}, which this player left, ignored`);
      return;
    }
    if (!lobbyMembers(l).some((m) => m.playerId === session?.playerId)) {
      logSys('note', `lobby.state for ${l.lobbyId} does not list this player; ignored`);
      return;
    }
    setLobby(l, 'snapshot');
  }

  function onLobbyChat(f) {
    if (!view.lobby || f.lobbyId !== view.lobby.lobbyId) {
      logSys('note', `chat for lobby ${str(f.lobbyId)}, which is not this player's lobby, ignored`);
      return;
    }
    const at = Date.parse(str(f.ts));
    addChat({
      kind: 'msg', name: str(f.from?.name) || str(f.from?.playerId), text: str(f.text),
      at: Number.isNaN(at) ? Date.now() : at, mine: f.from?.playerId === session?.playerId,
    });
  }

  function onLobbyRemoved(f) {
    const l = view.lobby;
    const id = str(f.lobbyId);
    view.lobbyLeft.add(id);
    if (l && l.lobbyId !== id) return; // an old lobby: nothing to show
    const code = l ? ` ${str(l.code)}` : '';
    const owner = l ? memberName(lobbyOwner(l)) : '';
    const text = f.reason === 'kicked'
      ? `You were kicked from lobby${code}${owner ? ` by its owner, ${owner}` : ''}. You can join another lobby or queue on your own.`
      : f.reason === 'closed'
        ? `Lobby${code} was closed by the server.`
        : `You were removed from lobby${code} (${str(f.reason) || 'no reason given'}).`;
    setLobby(null);
    showLobbyNotice(f.reason === 'kicked' ? 'error' : 'warn', text);
    lobbyLive(text);
  }

  // ---- the chat and its timeline

  function addChat(entry) {
    entry.at ??= Date.now();
    view.chat.push(entry);
    const list = $('chat-list');
    const box = $('chat-log');
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    list.append(chatItem(entry));
    while (view.chat.length > CHAT_CAP) {
      view.chat.shift();
      list.firstElementChild?.remove();
    }
    $('chat-empty').hidden = view.chat.length > 0;
    if (atBottom || entry.mine) box.scrollTop = box.scrollHeight;
  }

  function chatItem(e) {
    const time = el('time', { class: 'chat-time', text: new Date(e.at).toTimeString().slice(0, 8), dateTime: new Date(e.at).toISOString() });
    if (e.kind === 'sys') return el('li', { class: 'chat-sys' }, time, el('span', { text: e.text }));
    return el('li', { class: `chat-msg${e.mine ? ' mine' : ''}` },
      time,
      el('span', { class: 'chat-from' }, el('span', { text: e.name }), e.mine ? el('span', { class: 'visually-hidden', text: ' (you)' }) : null),
      el('span', { class: 'chat-text', text: e.text }));
  }

  function renderChat() {
    $('chat-list').replaceChildren(...view.chat.map(chatItem));
    $('chat-empty').hidden = view.chat.length > 0;
    $('chat-log').scrollTop = $('chat-log').scrollHeight;
  }

  function renderChatCount() {
    const n = runes($('chat-text').value);
    $('chat-count').textContent = n ? `${n} / ${MAX_CHAT} characters` : '';
    $('chat-count').classList.toggle('near', n > MAX_CHAT - 50 && n <= MAX_CHAT);
    $('chat-count').classList.toggle('over', n > MAX_CHAT);
  }

  async function sendChat(ev) {
    ev.preventDefault();
    const input = $('chat-text');
    const text = input.value;
    if (!text.trim()) {
      input.focus();
      return;
    }
    if (runes(text) > MAX_CHAT) {
      showNotice('chat-notice', 'error', `A message can have at most ${MAX_CHAT} characters; this one has ${runes(text)}.`);
      input.focus();
      return;
    }
    if (Date.now() < view.chatHoldUntil) return;
    $('chat-send').disabled = true;
    try {
      await request('lobby.chat', { text });
      input.value = '';
      renderChatCount();
      showNotice('chat-notice', null);
    } catch (err) {
      if (err.code === 'rate_limited') {
        view.chatHoldUntil = Date.now() + CHAT_HOLD_MS;
        showNotice('chat-notice', 'warn', 'Slow down: the server takes about one message a second, with bursts of 5. Your message is still in the box; send it again in a moment.', CHAT_HOLD_MS + 3000);
        setTimeout(renderLobbyControls, CHAT_HOLD_MS + 20);
      } else if (err.code === 'too_large') {
        showNotice('chat-notice', 'error', `Too long for the server: ${errText(err)}`);
      } else {
        showNotice('chat-notice', 'error', `Not sent: ${errText(err)}`);
      }
    } finally {
      renderLobbyControls();
      input.focus();
    }
  }

  // ---- actions

  // lobbyAction runs one lobby request at a time. Buttons stay enabled
  // meanwhile (disabling the focused one would drop the keyboard focus);
  // a second press while one is in flight is ignored. fn may return the id
  // of the element to focus once done.
  async function lobbyAction(fn) {
    if (view.lobbyBusy) return;
    view.lobbyBusy = true;
    $('lobby-panel').setAttribute('aria-busy', 'true');
    let focus;
    try {
      focus = await fn();
    } finally {
      view.lobbyBusy = false;
      $('lobby-panel').removeAttribute('aria-busy');
      renderControls();
    }
    if (focus) $(focus)?.focus();
  }

  function selectedVisibility(name) {
    return document.querySelector(`input[name="${name}"]:checked`)?.value ?? 'public';
  }

  async function createLobby(ev) {
    ev.preventDefault();
    const queue = $('lobby-queue').value;
    if (!queue) {
      showLobbyNotice('error', 'Pick a queue first.');
      $('lobby-queue').focus();
      return;
    }
    const max = readMax($('lobby-max'), 1, queueMaxUsers(queue));
    if (max.error) {
      showLobbyNotice('error', max.error);
      $('lobby-max').focus();
      return;
    }
    const props = readProps($('lobby-create-props'));
    if (props.error) {
      showLobbyNotice('error', props.error);
      props.input?.focus();
      return;
    }
    const fields = withSkill({ queue, visibility: selectedVisibility('lobby-visibility') });
    if (!fields) return;
    if (max.value !== undefined) fields.maxMembers = max.value;
    if (Object.keys(props.props).length) fields.props = props.props;
    await lobbyAction(async () => {
      try {
        const data = await request('lobby.create', fields);
        showLobbyNotice(null);
        setLobby(data.lobby, 'created');
        announce(`Lobby created. Join code ${spellCode(data.lobby?.code)}.`);
        return 'lobby-copy-code';
      } catch (err) {
        showLobbyNotice('error', `Could not create the lobby: ${errText(err)}`);
      }
    });
  }

  async function joinLobby(fields, what) {
    if (!withSkill(fields)) return;
    await lobbyAction(async () => {
      try {
        const data = await request('lobby.join', fields);
        showLobbyNotice(null);
        $('lobby-code').value = '';
        setLobby(data.lobby, 'joined');
        announce(`Joined ${what}.`);
        return 'lobby-ready-button';
      } catch (err) {
        const advice = {
          not_found: fields.code ? ` No open lobby has code ${fields.code}; check it with its owner. Private lobbies are joined by code only.` : ' It may have closed or gone private; refresh the list.',
          full: ' It has no room left.',
          conflict: ' Leave your queue or lobby first; a lobby that is queued or matched takes no one new.',
        }[err.code] ?? '';
        showLobbyNotice('error', `Could not join ${what}: ${errText(err)}.${advice}`);
        if (!fields.code) refreshLobbyList(true);
        return fields.code ? 'lobby-code' : undefined;
      }
    });
  }

  function joinByCode(ev) {
    ev.preventDefault();
    const { code, error } = normalizeCode($('lobby-code').value);
    if (error) {
      showLobbyNotice('error', error);
      $('lobby-code').focus();
      return;
    }
    $('lobby-code').value = code;
    joinLobby({ code }, `lobby ${code}`);
  }

  async function leaveLobby() {
    const l = view.lobby;
    if (!l) return;
    await lobbyAction(async () => {
      try {
        await request('lobby.leave');
        view.lobbyLeft.add(l.lobbyId);
        showLobbyNotice('info', `You left lobby ${str(l.code)}.`);
        setLobby(null);
        announce('Left the lobby.');
        return 'lobby-code';
      } catch (err) {
        if (err.code === 'not_found') {
          view.lobbyLeft.add(l.lobbyId);
          setLobby(null);
          showLobbyNotice('info', 'You were not in a lobby any more.');
        } else {
          showLobbyNotice('error', `Could not leave: ${errText(err)}`);
        }
      }
    });
  }

  async function toggleReady() {
    const me = myMember(view.lobby);
    if (!me) return;
    const fields = { ready: !me.ready };
    if (fields.ready && !withSkill(fields)) return;
    await lobbyAction(async () => {
      try {
        await request('lobby.ready', fields);
        showLobbyNotice(null);
        announce(me.ready ? 'Marked not ready.' : 'Marked ready.');
      } catch (err) {
        const advice = err.code === 'conflict' ? ' Readiness is locked while the lobby is queued; leave the queue first.' : '';
        showLobbyNotice('error', `Could not change readiness: ${errText(err)}.${advice}`);
      }
    });
  }

  async function kickMember(m) {
    const name = memberName(m);
    view.kicking.add(m.playerId);
    await lobbyAction(async () => {
      try {
        await request('lobby.kick', { playerId: m.playerId });
        showLobbyNotice(null);
        announce(`Kicked ${name}.`);
      } catch (err) {
        view.kicking.delete(m.playerId);
        showLobbyNotice('error', `Could not kick ${name}: ${errText(err)}`);
      }
    });
  }

  async function promoteMember(m) {
    const name = memberName(m);
    await lobbyAction(async () => {
      try {
        await request('lobby.promote', { playerId: m.playerId });
        showLobbyNotice(null);
        announce(`${name} is now the owner.`);
      } catch (err) {
        showLobbyNotice('error', `Could not make ${name} the owner: ${errText(err)}`);
      }
    });
  }

  // fillSettings copies the lobby into the owner's settings form.
  function fillSettings() {
    const l = view.lobby;
    if (!l) return;
    for (const r of document.querySelectorAll('input[name="lobby-edit-visibility"]')) r.checked = r.value === l.visibility;
    const max = queueMaxUsers(l.queue);
    const min = Math.max(1, lobbyMembers(l).length);
    $('lobby-edit-max').value = str(l.maxMembers);
    $('lobby-edit-max').min = String(min);
    if (max) $('lobby-edit-max').max = String(max);
    $('lobby-edit-max-range').textContent = max ? `(${min}–${max}: at least the members there are, at most the queue's match size)` : '';
    setPropRows($('lobby-edit-props'), l.props);
    view.settingsDirty = false;
  }

  async function saveSettings(ev) {
    ev.preventDefault();
    const l = view.lobby;
    if (!l) return;
    const fields = {};
    const visibility = selectedVisibility('lobby-edit-visibility');
    if (visibility !== l.visibility) fields.visibility = visibility;
    const max = readMax($('lobby-edit-max'), Math.max(1, lobbyMembers(l).length), queueMaxUsers(l.queue));
    if (max.error) {
      showNotice('lobby-settings-notice', 'error', max.error);
      $('lobby-edit-max').focus();
      return;
    }
    if (max.value !== undefined && max.value !== l.maxMembers) fields.maxMembers = max.value;
    const props = readProps($('lobby-edit-props'));
    if (props.error) {
      showNotice('lobby-settings-notice', 'error', props.error);
      props.input?.focus();
      return;
    }
    if (JSON.stringify(sortedProps(props.props)) !== JSON.stringify(sortedProps(l.props))) fields.props = props.props;
    if (!Object.keys(fields).length) {
      showNotice('lobby-settings-notice', 'info', 'Nothing changed.');
      return;
    }
    await lobbyAction(async () => {
      try {
        const data = await request('lobby.update', fields);
        showNotice('lobby-settings-notice', 'info', `Saved: ${Object.keys(fields).join(', ')}.`);
        setLobby(data.lobby, 'snapshot');
        fillSettings();
      } catch (err) {
        const advice = err.code === 'bad_request' && fields.maxMembers !== undefined ? ' Max members cannot go below the members there are now.' : '';
        showNotice('lobby-settings-notice', 'error', `Could not save: ${errText(err)}.${advice}`);
      }
    });
  }

  // refreshLobbyList asks for the public lobbies; auto is the background
  // poll (quiet in the frame log, silent on errors).
  async function refreshLobbyList(auto) {
    if (!conn.welcomed || view.lobby || view.listBusy) return;
    if (auto && document.hidden) return;
    view.listBusy = true;
    view.listAt = Date.now();
    renderLobbyControls();
    const fields = { limit: LIST_LIMIT };
    if ($('lobby-list-queue').value) fields.queue = $('lobby-list-queue').value;
    try {
      const data = await request('lobby.list', fields, { quiet: auto });
      view.publicLobbies = Array.isArray(data.lobbies) ? data.lobbies.filter((l) => l && typeof l.lobbyId === 'string') : [];
      view.listError = '';
    } catch (err) {
      view.listError = errText(err);
    } finally {
      view.listBusy = false;
    }
    renderLobbyList();
    renderLobbyControls();
  }

  // ---- rendering

  function spellCode(code) {
    return [...str(code)].join(' ');
  }

  function renderLobbyQueuePickers() {
    const names = view.queues.map((q) => q.name);
    const pick = $('lobby-queue');
    if ([...pick.options].map((o) => o.value).join('\n') !== names.join('\n')) {
      const keep = pick.value || $('queue').value || prefs.queue;
      pick.replaceChildren(...names.map((n) => el('option', { value: n, text: n })));
      if (names.includes(keep)) pick.value = keep;
    }
    const filter = $('lobby-list-queue');
    if ([...filter.options].slice(1).map((o) => o.value).join('\n') !== names.join('\n')) {
      const keep = filter.value;
      filter.replaceChildren(el('option', { value: '', text: 'All queues' }), ...names.map((n) => el('option', { value: n, text: n })));
      filter.value = names.includes(keep) ? keep : '';
    }
    renderCreateMax();
  }

  function renderCreateMax() {
    const max = queueMaxUsers($('lobby-queue').value);
    const input = $('lobby-max');
    input.max = max ? String(max) : '';
    input.placeholder = max ? String(max) : '';
    $('lobby-max-range').textContent = max ? `1 to ${max}; empty means ${max}, the queue's match size.` : '';
  }

  // syncQueueSelect points the matchmaking queue picker at the lobby's
  // queue while in a lobby (it queues there), and back to the player's pick.
  function syncQueueSelect() {
    const select = $('queue');
    const want = view.lobby ? str(view.lobby.queue) : prefs.queue;
    if (want && select.value !== want && [...select.options].some((o) => o.value === want)) {
      select.value = want;
      renderRegions();
      renderQueues();
    }
  }

  function renderQueueLobbyHint(l, { owner, queued, waiting, allocating }) {
    const hint = $('queue-lobby-hint');
    const n = lobbyMembers(l).length;
    const ownerName = memberName(lobbyOwner(l));
    let text;
    let kind = 'info';
    if (queued) {
      text = `Your whole lobby (${plural(n, 'player', 'players')}) is queued as one ticket in ${str(l.queue)}. Any member can take it out with Leave queue; so does anyone leaving the lobby.`;
      kind = 'queued';
    } else if (allocating) {
      text = 'Your lobby was matched; its party is being allocated.';
    } else if (!owner) {
      text = `You are in a lobby: only its owner, ${ownerName}, can queue it, as one ticket for everyone, once every member is ready. Regions are the owner's to pick; your Skill above goes with your ready, and the lobby's skill is its members' mean.`;
      kind = 'locked';
    } else if (waiting.length) {
      const names = waiting.map((m) => (m.playerId === session?.playerId ? 'you' : memberName(m)));
      text = `Your lobby queues as one ticket, in ${str(l.queue)}, once every member is ready. Waiting for ${names.join(', ')}.`;
      kind = 'locked';
    } else {
      text = `Everyone is ready: Queue the lobby puts all ${plural(n, 'player', 'players')} in ${str(l.queue)} as one ticket, with the regions above; its skill is the mean of the members' skills (given with ready), else the Skill above.`;
      kind = 'go';
    }
    hint.className = `lobby-hint ${kind}`;
    hint.textContent = text;
    hint.hidden = false;
  }

  // ticketPlayers describes a ticket's players: names where the lobby knows them.
  function ticketPlayers(players) {
    const me = session?.playerId;
    if (players.length === 1 && players[0] === me) {
      $('ticket-lobby').hidden = true;
      return ['just you'];
    }
    const members = new Map(lobbyMembers(view.lobby).map((m) => [m.playerId, m]));
    const whole = !!view.lobby && players.length === members.size && players.every((p) => members.has(p));
    $('ticket-lobby').hidden = !whole;
    if (!members.size) return [String(players.length)];
    const names = players.map((p) => (p === me ? 'you' : members.has(p) ? memberName(members.get(p)) : p));
    return [`${players.length}${whole ? ', your whole lobby' : ''}:`, el('span', { class: 'ticket-names', text: names.join(', ') })];
  }

  function renderLobby() {
    const l = view.lobby;
    $('lobby-none').hidden = !!l;
    $('lobby-current').hidden = !l;
    const titleBadge = $('lobby-title-status');
    titleBadge.hidden = !l;
    if (!l) {
      renderLobbyList();
      renderChat();
      renderLobbyControls();
      return;
    }
    const status = str(l.status) || 'unknown';
    for (const badge of [titleBadge, $('lobby-status')]) {
      badge.className = `badge ${status.replace(/[^a-z]/g, '')}`;
      badge.textContent = status;
    }
    const code = str(l.code);
    $('lobby-code-value').replaceChildren(
      el('span', { 'aria-hidden': 'true', text: code }),
      el('span', { class: 'visually-hidden', text: spellCode(code) }));
    $('lobby-invite-link').href = `./#code=${encodeURIComponent(code)}`;
    $('lobby-queue-name').textContent = str(l.queue);
    $('lobby-visibility').textContent = l.visibility === 'private' ? 'private (join code only)' : `${str(l.visibility)} (listed)`;
    $('lobby-id').textContent = str(l.lobbyId);
    $('lobby-props').replaceChildren(propChips(l.props));
    const members = lobbyMembers(l);
    $('lobby-count').textContent = `${members.length} / ${str(l.maxMembers)}`;
    const ready = members.filter((m) => m.ready).length;
    $('lobby-status-text').textContent = {
      open: ready === members.length ? 'everyone is ready' : `${ready} of ${members.length} ready`,
      queued: `one ticket for all ${members.length}${l.ticketId ? `: ${str(l.ticketId).slice(0, 8)}…` : ''}`,
      matched: 'match ready; ready up again to queue once more',
    }[status] ?? '';
    renderMembers(l);
    if ($('lobby-settings').open && !view.settingsDirty) fillSettings();
    if (view.chatLobbyId === l.lobbyId && $('chat-list').children.length !== view.chat.length) renderChat();
    renderLobbyControls();
  }

  function renderMembers(l) {
    const me = session?.playerId;
    const iOwn = l.ownerId === me;
    const list = $('lobby-members');
    keepFocus(list, () => {
      list.replaceChildren(...lobbyMembers(l).map((m) => {
        const name = memberName(m);
        const owner = m.playerId === l.ownerId;
        const mine = m.playerId === me;
        const away = m.connected === false;
        const actions = iOwn && !mine ? el('span', { class: 'member-actions' },
          el('button', {
            class: 'small', type: 'button', text: 'Promote', 'aria-label': `Make ${name} the owner`,
            'data-focus-key': `promote:${m.playerId}`, onclick: () => promoteMember(m),
          }),
          el('button', {
            class: 'small danger', type: 'button', text: 'Kick', 'aria-label': `Kick ${name}`,
            'data-focus-key': `kick:${m.playerId}`, onclick: () => kickMember(m),
          })) : null;
        return el('li', { class: `member${mine ? ' mine' : ''}${away ? ' away' : ''}${owner ? ' owner' : ''}` },
          el('span', { class: 'crown-slot' }, owner ? crownIcon() : null),
          el('span', { class: 'member-main' },
            el('span', { class: 'member-name' },
              el('span', { class: 'name', text: name }),
              owner ? el('span', { class: 'badge owner', text: 'owner' }) : null,
              mine ? el('span', { class: 'badge you', text: 'you' }) : null),
            el('code', { class: 'member-id', text: str(m.playerId) })),
          el('span', { class: `ready-pill ${m.ready ? 'is-ready' : 'not-ready'}` }, m.ready ? '✓ Ready' : 'Not ready'),
          el('span', { class: `presence ${away ? 'off' : 'on'}` },
            el('span', { class: 'dot', 'aria-hidden': 'true' }),
            el('span', { class: 'presence-text', 'data-away': away ? m.playerId : null, text: away ? awayText(m.playerId) : 'Online' })),
          actions);
      }));
    });
  }

  function awayText(playerId) {
    const since = view.lobbyAway.get(playerId);
    return since ? `Away ${fmtDuration(Date.now() - since)}` : 'Away';
  }

  function renderLobbyTimers() {
    for (const span of document.querySelectorAll('#lobby-members [data-away]')) span.textContent = awayText(span.dataset.away);
  }

  function renderLobbyList() {
    const list = $('lobby-list');
    const rows = view.publicLobbies ?? [];
    const status = $('lobby-list-status');
    if (!conn.welcomed) status.textContent = 'Connect to see public lobbies.';
    else if (view.listError) status.textContent = `Could not list lobbies: ${view.listError}`;
    else if (view.publicLobbies == null) status.textContent = 'Loading…';
    else status.textContent = rows.length
      ? `${plural(rows.length, 'open lobby', 'open lobbies')} with room · updated ${new Date(view.listAt).toTimeString().slice(0, 8)}, refreshing every ${LIST_REFRESH_MS / 1000} s`
      : `No public lobby has room right now · updated ${new Date(view.listAt).toTimeString().slice(0, 8)}. Create one, or join a private one by code.`;
    status.classList.toggle('err', !!view.listError);
    keepFocus(list, () => {
      list.replaceChildren(...rows.map((l) => {
        const owner = memberName(lobbyOwner(l));
        const n = lobbyMembers(l).length;
        const label = `${owner}'s lobby`;
        return el('li', { class: 'lobby-row' },
          el('div', { class: 'lobby-row-main' },
            el('div', { class: 'lobby-row-title' },
              crownIcon(), el('span', { class: 'name', text: label }),
              el('span', { class: 'count', text: `${n} / ${str(l.maxMembers)}` })),
            el('div', { class: 'hint inline' }, `${str(l.queue)} · `, lobbyMembers(l).map(memberName).join(', ')),
            Object.keys(l.props ?? {}).length ? propChips(l.props) : null),
          el('button', {
            class: 'small primary', type: 'button', text: 'Join', 'data-focus-key': `join:${l.lobbyId}`,
            'aria-label': `Join ${label} in ${str(l.queue)}, ${n} of ${str(l.maxMembers)} members`,
            disabled: !conn.welcomed || liveTicket(),
            onclick: () => joinLobby({ lobbyId: l.lobbyId }, label),
          }));
      }));
    });
  }

  // liveTicket: a player holding a searching ticket cannot enter a lobby.
  function liveTicket() {
    return view.ticket?.status === 'searching' || view.match?.phase === 'found';
  }

  function renderLobbyControls() {
    const online = conn.welcomed;
    const l = view.lobby;
    const ticket = liveTicket();
    $('lobby-offline').hidden = online;
    $('lobby-panel').classList.toggle('offline', !online);
    // Not in a lobby.
    $('lobby-ticket-hint').hidden = !online || !ticket || !!l;
    $('lobby-join-button').disabled = !online || ticket;
    $('lobby-create-button').disabled = !online || ticket || !$('lobby-queue').value;
    $('lobby-list-refresh').disabled = !online || view.listBusy;
    $('lobby-list-refresh').textContent = view.listBusy ? 'Refreshing…' : 'Refresh';
    for (const b of $('lobby-list').querySelectorAll('button')) b.disabled = !online || ticket;
    if (!l) return;
    // In a lobby.
    const me = myMember(l);
    const owner = l.ownerId === session?.playerId;
    const queued = l.status === 'queued';
    const members = lobbyMembers(l);
    const allReady = members.every((m) => m.ready);
    const ready = $('lobby-ready-button');
    ready.disabled = !online || queued || !me;
    ready.setAttribute('aria-pressed', me?.ready ? 'true' : 'false');
    ready.classList.toggle('is-ready', !!me?.ready);
    ready.textContent = me?.ready ? '✓ Ready' : "I'm ready";
    $('lobby-leave-button').disabled = !online;
    $('lobby-settings').hidden = !owner;
    if (!owner) $('lobby-settings').open = false;
    $('lobby-save-button').disabled = !online;
    for (const b of $('lobby-members').querySelectorAll('button')) b.disabled = !online;
    const ownerName = memberName(lobbyOwner(l));
    let hint;
    if (!online) hint = 'Offline: showing the lobby as it was. Reconnect within the grace period to keep your place.';
    else if (queued) hint = 'The lobby is queued: readiness is locked. Leaving the lobby, or Leave queue from any member, takes the whole lobby out of the queue.';
    else if (allReady) hint = owner ? 'Everyone is ready: queue the lobby from Matchmaking.' : `Everyone is ready: waiting for ${ownerName} to queue the lobby.`;
    else hint = owner ? 'When every member is ready, you queue the lobby from Matchmaking, as one ticket.' : `When every member is ready, the owner, ${ownerName}, queues the lobby.`;
    $('lobby-ready-hint').textContent = hint;
    $('lobby-current').classList.toggle('stale', !online);
    // The matchmaking buttons, repeated here: queue the lobby (its owner),
    // or take it out of the queue (anyone).
    const shortcut = $('lobby-queue-button');
    shortcut.hidden = !(owner || queued);
    shortcut.textContent = queued ? 'Leave queue' : 'Queue the lobby';
    shortcut.classList.toggle('primary', !queued);
    shortcut.disabled = queued ? $('leave-button').disabled : $('join-button').disabled;
    const hold = Date.now() < view.chatHoldUntil;
    $('chat-send').disabled = !online || hold;
    $('chat-send').textContent = hold ? 'Wait…' : 'Send';
  }

  // ---------------------------------------------------------------- start

  function bind() {
    $('signin').addEventListener('submit', signInWithDevToken);
    $('token-button').addEventListener('click', signInWithToken);
    $('connect-button').addEventListener('click', toggleConnection);
    $('newplayer-button').addEventListener('click', newPlayer);
    $('copy-token').addEventListener('click', (ev) => copyText(session?.token ?? '', ev.currentTarget));
    for (const button of document.querySelectorAll('[data-copy-from]')) {
      button.setAttribute('aria-label', `Copy ${button.dataset.copyWhat ?? 'player ID'}`);
      button.addEventListener('click', () => copyText($(button.dataset.copyFrom).textContent, button));
    }
    $('ping-button').addEventListener('click', ping);
    $('queue-form').addEventListener('submit', joinQueue);
    $('leave-button').addEventListener('click', leaveQueue);
    $('queue').addEventListener('change', () => {
      prefs.queue = $('queue').value;
      savePrefs();
      queueForm.queue = $('queue').value;
      saveQueueForm();
      renderRegions();
      renderQueues();
    });
    $('skill').addEventListener('input', () => {
      queueForm.skill = $('skill').value;
      saveQueueForm();
    });
    $('name').addEventListener('input', renderNameCount);
    $('token-input').addEventListener('input', renderTokenCheck);
    $('log-filter').addEventListener('input', refilterLog);
    $('log-hide-ping').checked = prefs.hidePings;
    $('log-hide-ping').addEventListener('change', (ev) => {
      prefs.hidePings = ev.currentTarget.checked;
      savePrefs();
      refilterLog();
    });
    $('log-expand').checked = prefs.expand;
    $('log-expand').addEventListener('change', (ev) => {
      prefs.expand = ev.currentTarget.checked;
      savePrefs();
      for (const d of $('log').querySelectorAll('details')) d.open = prefs.expand;
    });
    $('log-clear').addEventListener('click', () => {
      logEntries.length = 0;
      $('log').replaceChildren();
      renderLogCount();
    });
    $('log-download').addEventListener('click', downloadLog);
    $('raw-send').addEventListener('click', sendRaw);
    $('raw-text').addEventListener('input', renderRawSize);
    renderRawSize();

    // Lobby.
    $('lobby-create-form').addEventListener('submit', createLobby);
    $('lobby-create-addprop').addEventListener('click', () => addPropRow($('lobby-create-props'), '', '', true));
    $('lobby-queue').addEventListener('change', () => { renderCreateMax(); renderLobbyControls(); });
    $('lobby-join-form').addEventListener('submit', joinByCode);
    $('lobby-code').addEventListener('input', (ev) => {
      // Upper-case as typed, keeping the caret where it was.
      const input = ev.currentTarget;
      const at = input.selectionStart;
      input.value = input.value.toUpperCase();
      input.setSelectionRange(at, at);
    });
    $('lobby-list-refresh').addEventListener('click', () => refreshLobbyList(false));
    $('lobby-list-queue').addEventListener('change', () => refreshLobbyList(false));
    $('lobby-copy-code').addEventListener('click', (ev) => copyText(str(view.lobby?.code), ev.currentTarget));
    $('lobby-ready-button').addEventListener('click', toggleReady);
    $('lobby-leave-button').addEventListener('click', leaveLobby);
    $('lobby-queue-button').addEventListener('click', () => {
      if (view.lobby?.status === 'queued') leaveQueue();
      else if (!$('join-button').disabled) $('queue-form').requestSubmit();
    });
    $('lobby-settings').addEventListener('toggle', () => {
      if (!$('lobby-settings').open) return;
      fillSettings();
      showNotice('lobby-settings-notice', null);
    });
    $('lobby-settings-form').addEventListener('input', () => { view.settingsDirty = true; });
    $('lobby-settings-form').addEventListener('submit', saveSettings);
    $('lobby-reset-button').addEventListener('click', () => { fillSettings(); showNotice('lobby-settings-notice', null); });
    $('lobby-edit-addprop').addEventListener('click', () => {
      addPropRow($('lobby-edit-props'), '', '', true);
      view.settingsDirty = true;
    });
    $('chat-form').addEventListener('submit', sendChat);
    $('chat-text').addEventListener('input', renderChatCount);
    relabelProps($('lobby-create-props'));
    // ./#code=ABC234 (the "New player with this code" link) fills the join code.
    const hashCode = new URLSearchParams(location.hash.slice(1)).get('code');
    if (hashCode) {
      $('lobby-code').value = hashCode.toUpperCase().slice(0, CODE_LENGTH);
      history.replaceState(null, '', location.pathname + location.search);
    }

    window.addEventListener('online', () => { if (conn.retryTimer) connect(); });
    document.addEventListener('visibilitychange', () => { if (!document.hidden) refreshQueues(); });
    setInterval(refreshQueues, 3000);
    setInterval(() => {
      renderCountdown();
      renderTicketElapsed();
      renderLobbyTimers();
    }, 250);
    // The public lobby list refreshes itself while the player is in no lobby.
    setInterval(() => {
      if (Date.now() - view.listAt >= LIST_REFRESH_MS) refreshLobbyList(true);
    }, 1000);
    // The token's "expires in …" counts down, and turns to expired.
    setInterval(() => { if (session) renderIdentity(); }, 30000);
  }

  bind();
  // The sticky status bar's height, for scroll-padding-top (style.css): a
  // focused field or a jump to a panel stops below the bar, not under it.
  if (window.ResizeObserver) {
    new ResizeObserver(([entry]) => {
      document.documentElement.style.setProperty('--statusbar-h', `${Math.ceil(entry.borderBoxSize?.[0]?.blockSize ?? entry.target.offsetHeight)}px`);
    }).observe($('statusbar'));
  }
  // A reload keeps the queue form as it was; a new tab starts blank (the
  // name too: a new tab is a new player).
  $('skill').value = queueForm.skill;
  view.regionOrder = queueForm.regions.map(str);
  loadPlayerState();
  renderNameCount();
  renderAll();
  refreshQueues();
  if (session) connect();
  else setConn('idle', 'Not connected');
})();
