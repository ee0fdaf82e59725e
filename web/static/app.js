// lobbyd dev console: plain JavaScript, no build step, no dependencies.
//
// It speaks the client protocol (docs/protocol.md) over one WebSocket.
// Every string that comes from the server is put on the page with
// textContent (see el), never parsed as HTML.
//
// Adding the lobby panel later: handle lobby.state, lobby.chat and
// lobby.removed in EVENT_HANDLERS, read welcome.state.lobby in onWelcome,
// and add a <section> beside #match-panel; request() already sends any
// request type and resolves with its reply's data.
'use strict';

(() => {
  // ---------------------------------------------------------------- helpers

  const $ = (id) => document.getElementById(id);

  // el builds an element. Children that are strings become text nodes and
  // the "text" prop sets textContent, so data is never interpreted as markup.
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value == null || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = String(value);
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else if (key.startsWith('aria-') || key.startsWith('data-')) node.setAttribute(key, value === true ? '' : String(value));
      else node[key] = value;
    }
    for (const child of children.flat(Infinity)) {
      if (child != null && child !== false) node.append(child);
    }
    return node;
  }

  const str = (v) => (v == null ? '' : String(v));

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
  // player, a new tab is a new player. Preferences outlive the tab.
  const SESSION_KEY = 'lobbyd.console.session';
  const PREFS_KEY = 'lobbyd.console.prefs';

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
  const prefs = Object.assign({ name: '', queue: '', hidePings: false, expand: true }, loadJSON(localStorage, PREFS_KEY));
  const savePrefs = () => saveJSON(localStorage, PREFS_KEY, prefs);

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
    opened: false,
    welcomed: false,
    welcomedAt: 0,
    attempt: 0,
    tokenRenewals: 0,
    userClosing: false,
    retryTimer: 0,
    retryAt: 0,
  };

  function setConn(stateName, text) {
    const box = $('conn');
    box.dataset.state = stateName;
    $('conn-text').textContent = text;
    renderControls();
  }

  // showConnNotice fills the notice under the player panel; actions are
  // [label, handler] pairs shown as buttons.
  function showConnNotice(kind, lines, actions = []) {
    const box = $('conn-notice');
    box.className = `notice ${kind || ''}`;
    box.replaceChildren();
    if (!kind) return;
    for (const line of [].concat(lines)) box.append(el('p', { text: line, class: line === '' ? 'countdown' : null }));
    if (actions.length) {
      box.append(el('div', { class: 'buttons' }, actions.map(([label, handler]) => el('button', { type: 'button', class: 'small', text: label, onclick: handler }))));
    }
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
    setConn('connecting', conn.attempt ? `Reconnecting (attempt ${conn.attempt + 1})…` : 'Connecting…');
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
    showConnNotice('error', [heading, advice], actions ?? [['Connect again', () => { conn.attempt = 0; connect(); }]]);
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
    setConn('waiting', 'Waiting to reconnect');
    showConnNotice('warn', [why, ''], [
      ['Reconnect now', () => connect()],
      ['Stop reconnecting', () => { disconnect('stopped by user'); }],
    ]);
    renderCountdown();
  }

  function cancelRetry() {
    if (conn.retryTimer) clearTimeout(conn.retryTimer);
    conn.retryTimer = 0;
    conn.retryAt = 0;
  }

  function renderCountdown() {
    const line = document.querySelector('#conn-notice .countdown');
    if (!line || !conn.retryTimer) return;
    const left = Math.max(0, conn.retryAt - Date.now());
    line.textContent = `Reconnecting in ${(left / 1000).toFixed(1)} s (attempt ${conn.attempt}).`;
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
    setConn('waiting', 'Handshake failed');
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

  function sendText(text, frame) {
    if (!conn.ws || conn.ws.readyState !== WebSocket.OPEN) throw new RequestError('disconnected', 'not connected');
    conn.ws.send(text);
    addLog({
      dir: 'out', type: str(frame?.type) || '(not JSON)', note: frame?.id != null ? `#${str(frame.id)}` : '',
      frame: frame ?? undefined, text: frame ? undefined : text, isPing: frame?.type === 'ping',
    });
  }

  // request sends a request and resolves with its reply's data, or rejects
  // with a RequestError carrying the protocol error code.
  function request(type, fields) {
    if (!conn.welcomed) return Promise.reject(new RequestError('disconnected', 'not connected'));
    const id = `c${nextRequestId++}`;
    const frame = { type, id, ...fields };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new RequestError('timeout', `no reply to ${type} within ${REQUEST_TIMEOUT_MS / 1000} s`));
      }, REQUEST_TIMEOUT_MS);
      pending.set(id, { type, sentAt: performance.now(), resolve, reject, timer });
      try {
        sendText(JSON.stringify(frame), frame);
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
      addLog({ dir: 'in', type: '(not an object)', text: data, error: true });
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
      dir: 'in', type: 'reply', frame, error: !frame.ok, isPing: p?.type === 'ping',
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
    'match.ready': (f) => onMatchReady(f, false),
    'match.failed': onMatchFailed,
    'session.replaced': onSessionReplaced,
  };

  const view = {
    node: '',
    protocol: null,
    ticket: null,
    ticketEndedAt: 0, // local time the ticket stopped searching
    joinRequest: null, // {ticketId, skill, regions} this page asked for
    match: null, // {phase: 'found'|'ready'|'failed', found, ready, failed, restored, readyAfterMs}
    queues: [],
    queuesError: '',
    regionOrder: [], // ticked regions, most preferred first
    history: [], // ended matches, newest first: {matchId, outcome, detail, at}
    pings: [],
    clockOffset: 0, // server clock minus local clock, from the last ping
    busy: false,
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
    setTicket(state.ticket ?? null);
    if (state.match) {
      onMatchReady(state.match, true);
    } else if (view.match?.phase === 'found' && state.ticket?.status !== 'matched') {
      view.match = null; // the allocation ended while we were away
      renderMatch();
    }
    if (state.lobby) logSys('note', 'welcome.state.lobby is present; this console does not show lobbies yet');
    setConn('ready', 'Connected');
    renderFacts();
    ping(); // measures the round trip and the server's clock offset
  }

  function onMatchFound(f) {
    if (view.match?.phase === 'ready' && view.match.ready.matchId === f.matchId) return;
    view.match = { phase: 'found', found: f };
    renderMatch();
    $('match-live').textContent = 'Match found. Allocating a party.';
  }

  function onMatchReady(f, restored) {
    let readyAfterMs = 0;
    if (!restored && view.ticket?.createdAt) {
      const created = Date.parse(view.ticket.createdAt);
      if (!Number.isNaN(created)) readyAfterMs = Date.now() + view.clockOffset - created;
    }
    view.match = { phase: 'ready', found: view.match?.found, ready: f, restored, readyAfterMs };
    remember(f.matchId, 'ready', `party ${str(f.partyId)}`);
    renderMatch();
    $('match-live').textContent = `Match ready${restored ? ', restored on reconnect' : ''}.`;
  }

  function onMatchFailed(f) {
    view.match = { phase: 'failed', found: view.match?.found, failed: f };
    remember(f.matchId, 'failed', `${str(f.reason)}${f.requeued ? ', requeued' : ', not requeued'}`);
    renderMatch();
    $('match-live').textContent = `Match failed: ${str(f.reason)}.${f.requeued ? ' You are back in the queue.' : ''}`;
  }

  function remember(matchId, outcome, detail) {
    view.history = view.history.filter((h) => h.matchId !== str(matchId));
    view.history.unshift({ matchId: str(matchId), outcome, detail, at: new Date() });
    view.history.length = Math.min(view.history.length, 6);
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
    renderTicket();
    renderControls();
  }

  // ---------------------------------------------------------------- actions

  async function signInWithDevToken(ev) {
    ev.preventDefault();
    const name = $('name').value.trim();
    if ([...name].length > 32) {
      showConnNotice('error', 'The name can be at most 32 characters.');
      $('name').focus();
      return;
    }
    prefs.name = name;
    savePrefs();
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
    startSession({ name: str(claims.name) || claims.sub, playerId: claims.sub, token, source: 'pasted' });
  }

  function startSession(s) {
    session = s;
    saveSession();
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
    if (view.ticket?.status === 'searching' && conn.welcomed) {
      try { await request('queue.leave'); } catch { /* best effort */ }
    }
    disconnect('new player');
    session = null;
    saveSession();
    Object.assign(view, { node: '', protocol: null, ticket: null, match: null, history: [], pings: [], clockOffset: 0 });
    conn.attempt = 0;
    showQueueNotice(null);
    showNotice('ticket-notice', null);
    renderAll();
    $('name').value = '';
    $('name').focus();
  }

  async function useAnotherToken() {
    await newPlayer();
    $('paste-token').open = true;
    $('token-input').focus();
  }

  function toggleConnection() {
    if (conn.ws || conn.retryTimer) disconnect('disconnected by user');
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
          view.match = null;
          renderMatch();
        }
        view.joinRequest = { ticketId: str(data.ticket?.ticketId), skill: fields.skill, regions: fields.regions };
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

  function showNotice(id, kind, text) {
    const box = $(id);
    box.className = `notice ${kind || ''}`;
    box.textContent = kind ? text : '';
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
      const keep = select.value || prefs.queue;
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
    renderControls();
  }

  function renderRegions() {
    const q = selectedQueue();
    const regions = Array.isArray(q?.regions) ? q.regions.map(str) : [];
    const box = $('regions');
    box.dataset.regions = str(q?.regions);
    view.regionOrder = view.regionOrder.filter((r) => regions.includes(r));
    box.replaceChildren(...regions.map((region) => {
      const input = el('input', {
        type: 'checkbox', value: region, checked: view.regionOrder.includes(region),
        onchange: () => {
          view.regionOrder = view.regionOrder.filter((r) => r !== region);
          if (input.checked) view.regionOrder.push(region);
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
    const exp = Number(tokenClaims(session.token)?.exp);
    const expires = exp ? `expires ${new Date(exp * 1000).toLocaleString()}` : 'no expiry claim';
    $('id-token').textContent = `${session.source === 'dev' ? 'development token' : 'your token'}, ${expires}`;
  }

  function renderControls() {
    const online = conn.welcomed;
    const searching = view.ticket?.status === 'searching';
    const allocating = view.match?.phase === 'found';
    $('join-button').disabled = !online || view.busy || searching || allocating || !$('queue').value;
    $('leave-button').disabled = !online || view.busy || !searching;
    $('queue-offline').hidden = online;
    $('ping-button').disabled = !online;
    $('raw-send').disabled = !(conn.ws && conn.opened);
    $('connect-button').textContent = conn.ws || conn.retryTimer ? 'Disconnect' : 'Connect';
    const ready = view.match?.phase === 'ready';
    document.title = `${ready ? '● Match ready · ' : ''}${$('conn-text').textContent} · lobbyd console`;
  }

  function renderTicket() {
    const t = view.ticket;
    $('ticket').hidden = !t;
    $('match-empty').hidden = !!(t || view.match);
    if (!t) return;
    const status = str(t.status) || 'unknown';
    const badge = $('ticket-status');
    badge.className = `badge ${status.replace(/[^a-z]/g, '')}`;
    badge.textContent = status;
    $('ticket-id').textContent = str(t.ticketId);
    $('ticket-queue').textContent = str(t.queue);
    const players = Array.isArray(t.players) ? t.players : [];
    $('ticket-players').textContent = players.length === 1 && players[0] === session?.playerId ? 'just you' : `${players.length}`;
    const eta = Number(t.estimatedWaitMs);
    $('ticket-eta').hidden = $('ticket-eta-label').hidden = !(eta > 0);
    $('ticket-eta').textContent = eta > 0 ? `about ${fmtDuration(eta)}` : '';
    const asked = view.joinRequest?.ticketId === t.ticketId ? view.joinRequest : null;
    const askedText = asked ? [
      asked.skill !== undefined ? `skill ${asked.skill}` : '',
      asked.regions ? `regions ${asked.regions.join(' > ')}` : 'any region',
    ].filter(Boolean).join(' · ') : '';
    $('ticket-asked').hidden = $('ticket-asked-label').hidden = !askedText;
    $('ticket-asked').textContent = askedText;
    renderTicketElapsed();
  }

  function renderTicketElapsed() {
    const t = view.ticket;
    if (!t) return;
    const created = Date.parse(str(t.createdAt));
    const out = $('ticket-elapsed');
    if (Number.isNaN(created)) {
      out.textContent = '';
      return;
    }
    const end = t.status === 'searching' ? Date.now() : view.ticketEndedAt || Date.now();
    const waited = fmtDuration(end + view.clockOffset - created);
    out.textContent = t.status === 'searching' ? `for ${waited}` : `after ${waited}`;
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
    return [term, el('code', { text: v || '–' }), v ? copyButton(v, term) : null];
  }

  function dismissMatch() {
    view.match = null;
    if (view.ticket?.status !== 'searching') view.ticket = null;
    renderTicket();
    renderMatch();
    $('queue').focus();
  }

  function renderHistory() {
    const shown = view.match?.ready?.matchId ?? view.match?.failed?.matchId;
    const rows = view.history.filter((h) => h.matchId !== shown).slice(0, 5);
    $('history').hidden = rows.length === 0;
    $('history-list').replaceChildren(...rows.map((h) => el('li', {},
      el('span', { class: 'time', text: clockTime(h.at) }),
      el('span', { class: `badge ${h.outcome}`, text: h.outcome }),
      el('code', { text: h.matchId }),
      el('span', { class: 'hint', text: h.detail }))));
  }

  function renderMatch() {
    const m = view.match;
    const box = $('match');
    renderHistory();
    box.replaceChildren();
    $('match-empty').hidden = !!(m || view.ticket);
    renderControls();
    if (!m) return;
    const dismiss = el('button', { class: 'small', type: 'button', text: 'Dismiss', onclick: dismissMatch });

    if (m.phase === 'found') {
      const f = m.found;
      box.append(el('article', { class: 'match-card found', 'aria-labelledby': 'match-card-title' },
        el('header', {}, el('h3', { id: 'match-card-title', text: 'Match found' }), el('span', { class: 'hint', text: 'allocating a party…' })),
        kv([idRow('Match ID', f.matchId), ['Queue', str(f.queue)], ['Players', playerList(f.players)]])));
      return;
    }

    if (m.phase === 'failed') {
      const f = m.failed;
      box.append(el('article', { class: 'match-card failed', 'aria-labelledby': 'match-card-title' },
        el('header', {}, el('h3', { id: 'match-card-title', text: 'Match failed' }), dismiss),
        kv([
          idRow('Match ID', f.matchId),
          ['Reason', str(f.reason) || '–'],
          ['Next', f.requeued ? 'Your ticket went back to the queue.' : 'Not requeued: join again.'],
        ])));
      return;
    }

    const r = m.ready;
    const descriptor = str(r.networkDescriptor);
    const regions = Array.isArray(r.regions) ? r.regions : [];
    box.append(el('article', { class: 'match-card ready', 'aria-labelledby': 'match-card-title' },
      el('header', {},
        el('h3', { id: 'match-card-title' }, 'Match ready', m.restored ? el('span', { class: 'badge restored', text: 'restored on reconnect' }) : null),
        dismiss),
      kv([
        idRow('Match ID', r.matchId),
        ['Queue', str(r.queue)],
        idRow('Party ID', r.partyId),
        idRow('Invitation ID', r.invitationId),
        ['Regions', regions.length ? el('span', { class: 'chips' }, regions.map((g) => el('span', { class: 'chip', text: str(g) }))) : '–'],
        ['Players', playerList(r.players)],
        ['Network descriptor', el('div', { class: 'descriptor' },
          el('div', { class: 'line' },
            el('code', { text: descriptor ? middleTruncate(descriptor) : '–', title: `${descriptor.length} characters` }),
            descriptor ? copyButton(descriptor, 'network descriptor') : null),
          descriptor.length > 37 ? el('details', {}, el('summary', { text: `Show all ${descriptor.length} characters` }),
            el('pre', { text: descriptor, tabIndex: 0, 'aria-label': 'Network descriptor' })) : null)],
        m.readyAfterMs > 0 ? ['Ready after', `${(m.readyAfterMs / 1000).toFixed(1)} s from joining the queue`] : null,
      ])));
  }

  // ---------------------------------------------------------------- start

  function bind() {
    $('signin').addEventListener('submit', signInWithDevToken);
    $('token-button').addEventListener('click', signInWithToken);
    $('connect-button').addEventListener('click', toggleConnection);
    $('newplayer-button').addEventListener('click', newPlayer);
    $('copy-token').addEventListener('click', (ev) => copyText(session?.token ?? '', ev.currentTarget));
    for (const button of document.querySelectorAll('[data-copy-from]')) {
      button.setAttribute('aria-label', 'Copy player ID');
      button.addEventListener('click', () => copyText($(button.dataset.copyFrom).textContent, button));
    }
    $('ping-button').addEventListener('click', ping);
    $('queue-form').addEventListener('submit', joinQueue);
    $('leave-button').addEventListener('click', leaveQueue);
    $('queue').addEventListener('change', () => {
      prefs.queue = $('queue').value;
      savePrefs();
      renderRegions();
      renderQueues();
    });
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

    window.addEventListener('online', () => { if (conn.retryTimer) connect(); });
    document.addEventListener('visibilitychange', () => { if (!document.hidden) refreshQueues(); });
    setInterval(refreshQueues, 3000);
    setInterval(() => {
      renderCountdown();
      renderTicketElapsed();
    }, 250);
  }

  bind();
  $('name').value = prefs.name;
  renderAll();
  refreshQueues();
  if (session) connect();
  else setConn('idle', 'Not connected');
})();
