// lobbyd operator console: plain JavaScript, no build step, no dependencies.
//
// It calls the admin API (GET/POST /admin/api/..., see cmd/lobbyd/admin.go)
// with the bearer token the operator typed. The token is kept in
// sessionStorage only: never localStorage, never a cookie, never the URL.
// Every string that comes from the API is put on the page with textContent
// or an attribute (see el and svg), never parsed as HTML.
'use strict';

(() => {
  // ---------------------------------------------------------------- helpers

  const $ = (id) => document.getElementById(id);

  const TOKEN_KEY = 'lobbyd-admin-token';
  const REFRESH_MS = 1000; // how often the tables are fetched again
  const STATUS_MS = 6000; // how long an action's result stays on the status line
  const MATCH_LIMIT = 30;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const DASH = '–';

  // el builds an element from trusted structure and untrusted text; str
  // and truncate shape text (common/dom.js).
  const { el, str, truncate } = window.lobbyd;

  // svg builds an SVG element; attribute values are set with setAttribute.
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value != null) node.setAttribute(key, String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child != null && child !== false) node.append(child);
    }
    return node;
  }

  const enc = (v) => encodeURIComponent(str(v));
  const pad2 = (n) => String(n).padStart(2, '0');

  function num(n) {
    return n == null || Number.isNaN(Number(n)) ? DASH : Number(n).toLocaleString('en-US');
  }

  // fmtSeconds shows a duration in seconds the short way: 42 s, 3m 05s, 2h 10m, 3d 4h.
  function fmtSeconds(sec) {
    if (sec == null || !Number.isFinite(Number(sec))) return DASH;
    const s = Math.max(0, Math.floor(sec));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ${pad2(s % 60)}s`;
    const h = Math.floor(m / 60);
    if (h < 48) return `${h}h ${pad2(m % 60)}m`;
    return `${Math.floor(h / 24)}d ${h % 24}h`;
  }

  function fmtMs(ms) {
    if (ms == null || !Number.isFinite(Number(ms))) return DASH;
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 10000) return `${(ms / 1000).toFixed(1)} s`;
    return fmtSeconds(ms / 1000);
  }

  function fmtRate(perSecond) {
    if (perSecond === 0) return '0/s';
    if (perSecond < 0.1) return `${perSecond.toFixed(3)}/s`;
    if (perSecond < 10) return `${perSecond.toFixed(2)}/s`;
    return `${Math.round(perSecond)}/s`;
  }

  // fmtTime shows a time (an ISO string or Unix milliseconds) in local time:
  // the clock only when it is today.
  function fmtTime(v) {
    if (v == null || v === '' || v === 0) return DASH;
    const d = new Date(v);
    if (Number.isNaN(d.getTime())) return str(v);
    const clock = `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
    if (d.toDateString() === new Date().toDateString()) return clock;
    return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${clock}`;
  }

  function isoTitle(v) {
    const d = new Date(v);
    return Number.isNaN(d.getTime()) ? str(v) : d.toISOString();
  }

  function fmtAgo(v) {
    const t = new Date(v).getTime();
    return Number.isNaN(t) ? DASH : `${fmtSeconds((Date.now() - t) / 1000)} ago`;
  }

  function badge(text, cls, props) {
    return el('span', Object.assign({ class: `badge ${cls || ''}`.trim(), text }, props || {}));
  }

  // kv builds a definition list from [label, value] pairs; a value is a
  // string or a node (or a list of them); pairs with a null value are left out.
  function kv(pairs) {
    const dl = el('dl', { class: 'kv' });
    for (const [label, value] of pairs) {
      if (value == null) continue;
      dl.append(el('dt', { text: label }), el('dd', {}, value));
    }
    return dl;
  }

  function code(text) {
    return el('code', { text: str(text) });
  }

  // linkButton is a button that looks like a link, for ids that open a lookup.
  function linkButton(text, onclick, props) {
    return el('button', Object.assign({ type: 'button', class: 'link mono', text: str(text), onclick }, props || {}));
  }

  // ---------------------------------------------------------------- status line and banner

  let statusTimer = null;

  // showStatus puts an action's result on the status line for a few seconds.
  function showStatus(text, kind) {
    const line = $('status');
    line.textContent = text;
    line.className = `status ${kind || ''}`.trim();
    line.dataset.kind = kind || '';
    clearTimeout(statusTimer);
    statusTimer = setTimeout(clearStatus, STATUS_MS);
  }

  function clearStatus() {
    clearTimeout(statusTimer);
    const line = $('status');
    line.textContent = '';
    line.className = 'status';
    line.dataset.kind = '';
  }

  function showBanner(text) {
    const banner = $('banner');
    banner.textContent = text || '';
    banner.hidden = !text;
  }

  // ---------------------------------------------------------------- the admin API

  class ApiError extends Error {
    // status is the HTTP status, or 0 when the API could not be reached.
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // call sends one admin API request with the bearer token (the session's,
  // unless one is given) and returns the decoded JSON answer. It throws an
  // ApiError with the answer's "error" message when the status is not 2xx.
  async function call(method, path, { body, token } = {}) {
    const bearer = token || sessionStorage.getItem(TOKEN_KEY);
    if (!bearer) throw new ApiError(401, 'not signed in');
    const headers = { Authorization: `Bearer ${bearer}`, Accept: 'application/json' };
    const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      // Relative to the page (/admin/), so a proxy's path prefix is kept.
      resp = await fetch(new URL(`api/${path}`, document.baseURI), init);
    } catch {
      throw new ApiError(0, 'admin API unreachable');
    }
    let data = null;
    try {
      data = await resp.json();
    } catch { /* not JSON: the status says enough */ }
    if (!resp.ok) {
      const msg = data && typeof data.error === 'string' ? data.error : `HTTP ${resp.status} ${resp.statusText}`.trim();
      throw new ApiError(resp.status, msg);
    }
    return data;
  }

  // refused handles an error that says the token is no longer good: it
  // signs out and reports true.
  function refused(err) {
    if (err && err.status === 401) {
      signOut('The admin API refused the token: sign in again.', true);
      return true;
    }
    return false;
  }

  // act runs an operator action and puts its result on the status line.
  // describe turns the JSON answer into words; it returns the answer, or
  // null when the action failed.
  async function act(label, method, path, { body, describe, button } = {}) {
    if (button) button.disabled = true;
    try {
      const data = await call(method, path, { body });
      showStatus(`${label}: ${describe ? describe(data) : truncate(JSON.stringify(data), 300)}`, 'ok');
      refreshSoon();
      return data;
    } catch (err) {
      if (!refused(err)) showStatus(`${label} failed: ${err.message}`, 'err');
      return null;
    } finally {
      if (button) button.disabled = false;
    }
  }

  // ---------------------------------------------------------------- sign-in

  // session counts sign-ins and sign-outs: an answer that arrives after the
  // session it was asked for has ended is dropped.
  let session = 0;
  let refreshTimer = null;

  function showSignin(message, isError) {
    $('console').hidden = true;
    $('facts').hidden = true;
    $('signout').hidden = true;
    $('signin-panel').hidden = false;
    const line = $('signin-error');
    line.textContent = message || '';
    line.className = isError ? 'error' : 'info';
    $('token').focus();
  }

  function signOut(message, isError) {
    sessionStorage.removeItem(TOKEN_KEY);
    session++;
    clearTimeout(refreshTimer);
    showBanner('');
    clearStatus();
    clearData();
    showSignin(message, isError);
  }

  function start() {
    session++;
    const mine = session;
    $('signin-panel').hidden = true;
    $('console').hidden = false;
    $('facts').hidden = false;
    $('signout').hidden = false;
    refresh(mine);
  }

  $('signin-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = $('token');
    const token = input.value.trim();
    const line = $('signin-error');
    if (!token) {
      line.textContent = 'Enter the admin token.';
      line.className = 'error';
      return;
    }
    $('signin').disabled = true;
    line.textContent = 'Checking the token…';
    line.className = 'info';
    try {
      await call('GET', 'nodes', { token });
      sessionStorage.setItem(TOKEN_KEY, token);
      input.value = '';
      line.textContent = '';
      start();
    } catch (err) {
      sessionStorage.removeItem(TOKEN_KEY);
      if (err.status === 401) line.textContent = 'Wrong token: the admin API refused it.';
      else if (err.status === 0) line.textContent = 'The admin API is unreachable: check the address, then try again.';
      else line.textContent = `Sign-in failed: ${err.message}`;
      line.className = 'error';
      input.select();
    } finally {
      $('signin').disabled = false;
    }
  });

  $('signout').addEventListener('click', () => signOut('Signed out: the token is forgotten.', false));

  // ---------------------------------------------------------------- the refresh loop

  // refreshing is set while a refresh waits for its answers; soon asks it
  // to run the next one at once (an action changed something).
  let refreshing = false;
  let soon = false;

  // refreshSoon fetches everything again now, or as soon as the refresh
  // under way ends, so that an action's effect shows at once.
  function refreshSoon() {
    if ($('console').hidden) return;
    if (refreshing) {
      soon = true;
      return;
    }
    clearTimeout(refreshTimer);
    refresh(session);
  }

  async function refresh(mine) {
    refreshing = true;
    let results;
    try {
      results = await Promise.allSettled([
        call('GET', 'queues'),
        call('GET', 'nodes'),
        call('GET', `matches?limit=${MATCH_LIMIT}`),
        call('GET', 'playfab'),
      ]);
    } finally {
      refreshing = false;
    }
    if (mine !== session) return;
    const errors = results.filter((r) => r.status === 'rejected').map((r) => r.reason);
    if (errors.some((e) => e && e.status === 401)) {
      refused(errors.find((e) => e.status === 401));
      return;
    }
    const [queues, nodes, matches, playfab] = results.map((r) => (r.status === 'fulfilled' ? r.value : null));
    try {
      if (queues) renderQueues(queues);
      if (nodes) renderNodes(nodes);
      if (matches) renderMatches(matches);
      if (playfab) renderPlayFab(playfab);
    } catch (err) {
      // A bug in a renderer must not stop the loop.
      errors.push(new ApiError(-1, `console error: ${err.message}`));
    }
    if (errors.some((e) => !e || e.status === 0)) {
      showBanner('admin API unreachable: retrying every second…');
    } else if (errors.length) {
      showBanner(`admin API error: ${errors.map((e) => e.message).join('; ')}`);
    } else {
      showBanner('');
      $('fact-updated').textContent = fmtTime(Date.now());
    }
    document.body.dataset.refreshed = String(Date.now());
    // Clearing first keeps one loop, even if two refreshes overlapped.
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => refresh(mine), soon ? 0 : REFRESH_MS);
    soon = false;
  }

  // clearData empties every table and result, so that nothing stays on the
  // page after signing out.
  function clearData() {
    for (const id of ['queues', 'nodes', 'matches', 'pf-nodes']) $(id).tBodies[0].replaceChildren();
    for (const id of ['player-result', 'lobby-result', 'match-result']) {
      $(id).replaceChildren();
      delete $(id).dataset.id;
    }
    for (const id of ['pf-calls', 'pf-errors', 'pf-throttles', 'pf-inflight', 'fact-node', 'fact-updated']) $(id).textContent = DASH;
    $('pf-by-error').replaceChildren();
    $('matches-count').textContent = '';
    for (const id of ['player-id', 'lobby-id', 'match-id', 'drain-period']) $(id).value = '';
  }

  // syncRows updates a table body in place from items, one row per key
  // (kept in the row's data-<attr>), so that rows and their buttons survive
  // a refresh: a click is never lost to a re-render.
  function syncRows(tbody, items, keyOf, attr, create, update) {
    const existing = new Map();
    for (const row of Array.from(tbody.rows)) existing.set(row.dataset[attr], row);
    let i = 0;
    for (const item of items) {
      const key = str(keyOf(item));
      let row = existing.get(key);
      if (row) existing.delete(key);
      else {
        row = create(key);
        row.dataset[attr] = key;
      }
      update(row, item);
      if (tbody.rows[i] !== row) tbody.insertBefore(row, tbody.rows[i] || null);
      i++;
    }
    for (const row of existing.values()) row.remove();
  }

  // rowOf makes a row with one cell per class name.
  function rowOf(classes) {
    return el('tr', {}, classes.map((c) => el('td', { class: c })));
  }

  // cell sets the content of a row's cell: a string, or nodes.
  function cell(row, cls, ...content) {
    const td = row.querySelector(`td.${cls.split(' ')[0]}`);
    if (content.length === 1 && typeof content[0] === 'string') {
      if (td.textContent !== content[0] || td.children.length) td.textContent = content[0];
    } else {
      td.replaceChildren(...content.flat().filter((c) => c != null && c !== false));
    }
    return td;
  }

  // ---------------------------------------------------------------- queues

  const QUEUE_CELLS = ['name', 'depth num', 'waiting num', 'wait num', 'ttm num', 'matched num', 'expired num', 'backlog num', 'leader', 'chart'];

  function renderQueues(data) {
    const queues = Array.isArray(data.queues) ? data.queues : [];
    syncRows($('queues').tBodies[0], queues, (q) => q.name, 'queue', () => rowOf(QUEUE_CELLS), updateQueue);
    $('queues-empty').hidden = queues.length > 0;
    const version = Number(data.configVersion);
    $('config-version').textContent = version > 0 ? `(config version ${version})` : '';
  }

  function updateQueue(row, q) {
    const f = q.figures || null;
    cell(row, 'name', str(q.name)).title = q.maxUsers ? `${q.maxUsers} players a match` : '';
    cell(row, 'depth', num(q.depth));
    cell(row, 'waiting', f ? num(f.waitingPlayers) : DASH);
    cell(row, 'wait', q.estimatedWaitMs != null ? fmtMs(q.estimatedWaitMs) : DASH);
    cell(row, 'ttm', f && f.timeToMatchP50Ms != null ? `${fmtMs(f.timeToMatchP50Ms)} / ${fmtMs(f.timeToMatchP99Ms)}` : DASH);
    cell(row, 'matched', f ? num(f.matchedLast5m) : DASH);
    cell(row, 'expired', f ? num(f.expiredLast5m) : DASH);
    cell(row, 'backlog', num(q.allocationBacklog)).classList.toggle('warn', Number(q.allocationBacklog) > 0);
    const leader = cell(row, 'leader', q.leader ? str(q.leader) : 'none');
    leader.classList.toggle('none', !q.leader);
    leader.title = q.leader ? '' : 'No node leads this queue: nothing is matched';
    cell(row, 'chart', seriesChart(f));
  }

  // seriesChart draws figures.series (matches per 10 s bucket over the last
  // 10 minutes) as bars of matches per second.
  function seriesChart(f) {
    const W = 150;
    const H = 30;
    const BUCKET = 10; // seconds
    const SPAN = 600; // seconds
    const series = f && Array.isArray(f.series) ? f.series : [];
    const endMs = f && f.at ? new Date(f.at).getTime() : Date.now();
    const end = Math.floor((Number.isNaN(endMs) ? Date.now() : endMs) / 1000 / BUCKET) * BUCKET + BUCKET;
    const start = end - SPAN;
    const points = series
      .filter((p) => Number.isFinite(Number(p.t)) && p.t >= start && p.t < end)
      .map((p) => ({ t: Number(p.t), rate: Math.max(0, Number(p.matches) || 0) / BUCKET }));
    const peak = points.reduce((m, p) => Math.max(m, p.rate), 0);
    const scale = Math.max(peak, 0.1);
    const barW = W / (SPAN / BUCKET);
    const label = f
      ? `matches per second over the last 10 minutes: peak ${fmtRate(peak)}, last ${fmtRate(points.length ? points[points.length - 1].rate : 0)}`
      : 'no figures: the queue has no leader';
    const chart = svg('svg', { class: 'spark', viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': label },
      svg('title', {}, label),
      svg('line', { class: 'axis', x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5 }),
      points.filter((p) => p.rate > 0).map((p) => {
        const h = Math.max(1, (p.rate / scale) * (H - 2));
        return svg('rect', { class: 'bar', x: (((p.t - start) / BUCKET) * barW).toFixed(2), y: (H - 1 - h).toFixed(2), width: Math.max(1, barW - 0.5).toFixed(2), height: h.toFixed(2) });
      }));
    return el('span', { class: 'chart-wrap' }, chart, el('span', { class: 'peak', text: f ? `peak ${fmtRate(peak)}` : 'no data' }));
  }

  $('reload-queues').addEventListener('click', async (event) => {
    if (!window.confirm('Reload the queues?\n\nThe answering node reads its queue file (LOBBYD_CONFIG) again and, if it is valid, every node runs it. A removed queue\'s waiting tickets expire.')) return;
    const button = event.currentTarget;
    button.disabled = true;
    try {
      const data = await call('POST', 'queues/reload', { body: {} });
      const queues = data && Array.isArray(data.queues) ? data.queues.join(', ') : '';
      const summary = data && data.version != null ? `version ${str(data.version)}, ${data.changed ? 'changed' : 'unchanged'}; queues: ${queues || DASH} · ` : '';
      showStatus(`Queue reload: ${summary}${truncate(JSON.stringify(data), 300)}`, 'ok');
      refreshSoon();
    } catch (err) {
      if (refused(err)) return;
      // 404/405: a lobbyd of an earlier version, without the route.
      const msg = err.status === 404 || err.status === 405 ? `this lobbyd cannot reload queues (HTTP ${err.status})` : err.message;
      showStatus(`Queue reload failed: ${msg}`, 'err');
    } finally {
      button.disabled = false;
    }
  });

  // ---------------------------------------------------------------- nodes

  const NODE_CELLS = ['id', 'version mono', 'state', 'uptime num', 'conns num', 'led', 'beat num', 'actions'];

  function renderNodes(data) {
    const nodes = Array.isArray(data.nodes) ? data.nodes : [];
    syncRows($('nodes').tBodies[0], nodes, (n) => n.id, 'node', createNode, updateNode);
    const self = nodes.find((n) => n.self);
    $('fact-node').textContent = self ? str(self.id) : DASH;
  }

  function createNode(id) {
    const row = rowOf(NODE_CELLS);
    const drain = el('button', { type: 'button', class: 'small danger drain', text: 'Drain', onclick: () => drainNode(id, drain) });
    row.querySelector('td.actions').append(drain);
    return row;
  }

  function updateNode(row, n) {
    const live = n.state === 'up' || n.state === 'draining';
    cell(row, 'id', el('span', { class: 'mono', text: str(n.id) }), n.self ? badge('this node', 'self') : null);
    cell(row, 'version', str(n.version) || DASH);
    cell(row, 'state', badge(str(n.state), `state-${str(n.state)}`));
    // uptimeSeconds is as of the last heartbeat; add the heartbeat's age for now.
    cell(row, 'uptime', live ? fmtSeconds(Number(n.uptimeSeconds) + Number(n.heartbeatAgeSeconds || 0)) : DASH).title = n.startedAt ? `started ${isoTitle(n.startedAt)}` : '';
    cell(row, 'conns', live ? num(n.connections) : DASH);
    cell(row, 'led', Array.isArray(n.queuesLed) && n.queuesLed.length ? n.queuesLed.join(', ') : DASH);
    cell(row, 'beat', `${fmtSeconds(n.heartbeatAgeSeconds)} ago`).title = n.lastSeen ? isoTitle(n.lastSeen) : '';
    row.className = `node-${str(n.state)}`;
    row.dataset.state = str(n.state);
    const drain = row.querySelector('button.drain');
    drain.hidden = !live;
    drain.title = n.state === 'draining' ? 'Draining already; drain again to change nothing' : `Drain ${n.id}`;
  }

  async function drainNode(id, button) {
    const period = $('drain-period').value.trim();
    const over = period ? ` over ${period}` : ' over its drain period';
    if (!window.confirm(`Drain node ${id}${over}?\n\nIt stops taking sockets and closes its players' connections; they reconnect to other nodes.`)) return;
    const query = period ? `?period=${enc(period)}` : '';
    await act(`Drain ${id}`, 'POST', `nodes/${enc(id)}/drain${query}`, { button, describe: (d) => `node ${str(d && d.draining)} is draining` });
  }

  // ---------------------------------------------------------------- matches

  const MATCH_CELLS = ['id', 'queue', 'state', 'players', 'teams', 'regions', 'party mono', 'created', 'alloc num', 'attempts num', 'fail'];

  function renderMatches(data) {
    const matches = Array.isArray(data.matches) ? data.matches : [];
    syncRows($('matches').tBodies[0], matches, (m) => m.matchId, 'match', createMatch, updateMatch);
    $('matches-empty').hidden = matches.length > 0;
    $('matches-count').textContent = matches.length ? `(${matches.length} newest)` : '';
  }

  function createMatch(id) {
    const row = rowOf(MATCH_CELLS);
    row.querySelector('td.id').append(linkButton(id, () => lookupMatch(id), { title: 'Show this match' }));
    return row;
  }

  function playerNames(players) {
    const byId = new Map((players || []).map((p) => [p.playerId, p.name || p.playerId]));
    return (id) => byId.get(id) || id;
  }

  function fmtTeams(m) {
    if (!Array.isArray(m.teams) || !m.teams.length) return DASH;
    const name = playerNames(m.players);
    return m.teams.map((team, i) => `${i + 1}: ${(team || []).map(name).join(', ')}`).join(' | ');
  }

  function matchError(m) {
    const parts = [];
    if (m.lastError) parts.push(el('strong', { class: 'err-name', text: str(m.lastError) }));
    if (m.failReason) parts.push(el('span', { class: 'reason', text: str(m.failReason) }));
    return parts.length ? parts : [DASH];
  }

  function updateMatch(row, m) {
    const players = Array.isArray(m.players) ? m.players : [];
    cell(row, 'queue', str(m.queue));
    cell(row, 'state', badge(str(m.state), `state-${str(m.state)}`));
    const names = players.map((p) => str(p.name || p.playerId));
    cell(row, 'players', `${players.length}: ${truncate(names.join(', '), 80)}`).title = players.map((p) => `${str(p.name)} (${str(p.playerId)})`).join('\n');
    cell(row, 'teams', truncate(fmtTeams(m), 80));
    cell(row, 'regions', Array.isArray(m.regions) && m.regions.length ? m.regions.join(', ') : DASH);
    cell(row, 'party', str(m.partyId) || DASH);
    cell(row, 'created', fmtTime(m.createdAt)).title = isoTitle(m.createdAt);
    let alloc = DASH;
    if (m.allocationMs != null) alloc = fmtMs(m.allocationMs);
    else if (m.state === 'allocating') alloc = `${fmtAgo(m.createdAt).replace(' ago', '')}…`;
    cell(row, 'alloc', alloc);
    cell(row, 'attempts', num(m.attempts));
    cell(row, 'fail', matchError(m));
    row.className = `match-${str(m.state)}`;
  }

  // ---------------------------------------------------------------- PlayFab

  function renderPlayFab(d) {
    $('pf-calls').textContent = num(d.calls);
    $('pf-errors').textContent = num(d.errors);
    $('pf-errors').classList.toggle('bad', Number(d.errors) > 0);
    $('pf-throttles').textContent = num(d.throttles);
    $('pf-throttles').classList.toggle('bad', Number(d.throttles) > 0);
    $('pf-inflight').textContent = num(d.inFlight);
    const byName = Object.entries(d.errorsByName || {}).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    const list = $('pf-by-error');
    const text = byName.map(([name, n]) => `${name}=${n}`).join(',');
    if (list.dataset.text !== text) {
      list.dataset.text = text;
      list.replaceChildren(...byName.map(([name, n]) => el('li', { class: 'chip' }, el('span', { class: 'mono', text: name }), ` × ${num(n)}`)));
    }
    $('pf-by-error-empty').hidden = byName.length > 0;
    const nodes = Array.isArray(d.nodes) ? d.nodes : [];
    syncRows($('pf-nodes').tBodies[0], nodes, (n) => n.node, 'node', () => rowOf(['node mono', 'calls num', 'inflight num', 'age num', 'expires num']), (row, n) => {
      let calls = 0;
      for (const outcomes of Object.values(n.calls || {})) for (const c of Object.values(outcomes || {})) calls += Number(c) || 0;
      cell(row, 'node', str(n.node));
      cell(row, 'calls', num(calls));
      cell(row, 'inflight', num(n.inFlight));
      cell(row, 'age', n.tokenAgeSeconds > 0 ? fmtSeconds(n.tokenAgeSeconds) : 'no token');
      cell(row, 'expires', n.tokenExpiresInSeconds > 0 ? fmtSeconds(n.tokenExpiresInSeconds) : DASH);
    });
  }

  // ---------------------------------------------------------------- lookups

  // Each lookup box remembers its latest request, so that a slow answer to
  // an earlier one does not overwrite it.
  const lookupSeq = { 'player-result': 0, 'lobby-result': 0, 'match-result': 0 };

  async function lookup(boxId, path, id, render) {
    const box = $(boxId);
    const seq = ++lookupSeq[boxId];
    const mine = session;
    box.setAttribute('aria-busy', 'true');
    try {
      const data = await call('GET', path);
      if (seq !== lookupSeq[boxId] || mine !== session) return;
      box.dataset.id = id;
      box.replaceChildren(...render(data));
    } catch (err) {
      if (seq !== lookupSeq[boxId] || mine !== session || refused(err)) return;
      box.dataset.id = id;
      box.replaceChildren(el('p', { class: 'error', 'data-testid': 'lookup-error', text: err.status === 0 ? 'admin API unreachable' : err.message }));
    } finally {
      box.removeAttribute('aria-busy');
    }
  }

  function lookupPlayer(id) {
    $('player-id').value = id;
    return lookup('player-result', `players/${enc(id)}`, id, renderPlayer);
  }

  function lookupLobby(id) {
    $('lobby-id').value = id;
    return lookup('lobby-result', `lobbies/${enc(id)}`, id, renderLobby);
  }

  function lookupMatch(id) {
    $('match-id').value = id;
    return lookup('match-result', `matches/${enc(id)}`, id, renderMatch);
  }

  for (const [form, input, fn] of [['player-form', 'player-id', lookupPlayer], ['lobby-form', 'lobby-id', lookupLobby], ['match-form', 'match-id', lookupMatch]]) {
    $(form).addEventListener('submit', (event) => {
      event.preventDefault();
      const id = $(input).value.trim();
      if (id) fn(id);
    });
  }

  function renderPlayer(p) {
    const id = str(p.playerId);
    const t = p.ticket || null;
    const l = p.lobby || null;
    const m = p.match || null;
    const ticket = t
      ? el('div', { class: 'stack' },
        el('div', {}, badge(str(t.status), `ticket-status status-${str(t.status)}`, { 'data-testid': 'ticket-status' }), ' in ', el('strong', { text: str(t.queue) }),
          t.lobbyId ? ' (whole lobby)' : ''),
        el('div', { class: 'hint' }, 'created ', el('span', { text: fmtTime(t.createdAt), title: isoTitle(t.createdAt) }), ` (${fmtAgo(t.createdAt)})`),
        el('div', { class: 'hint' }, 'ticket ', code(t.ticketId), ` · ${Array.isArray(t.players) ? t.players.length : 0} player(s)`))
      : el('span', { class: 'hint', 'data-testid': 'no-ticket', text: 'none' });
    const lobby = l
      ? el('div', { class: 'stack' },
        el('div', {}, linkButton(l.code || l.id, () => lookupLobby(l.id), { title: 'Show this lobby' }), ' ', badge(str(l.status), `state-${str(l.status)}`)),
        el('div', { class: 'hint', text: `${Array.isArray(l.members) ? l.members.length : 0} / ${num(l.maxMembers)} members · ${str(l.queue)} · owner ${str(l.ownerId)}` }))
      : el('span', { class: 'hint', text: 'none' });
    const match = m
      ? el('div', { class: 'stack' },
        el('div', {}, linkButton(m.matchId, () => lookupMatch(m.matchId), { title: 'Show this match' }), ' ', badge(str(m.state), `state-${str(m.state)}`)),
        m.lastError || m.failReason ? el('div', {}, matchError(m)) : null)
      : el('span', { class: 'hint', text: 'none' });

    const actions = el('div', { class: 'buttons' });
    if (t) {
      const b = el('button', { type: 'button', id: 'cancel-ticket', text: 'Cancel ticket' });
      b.addEventListener('click', async () => {
        const done = await act(`Cancel ticket of ${id}`, 'POST', `players/${enc(id)}/cancel-ticket`, { button: b, describe: (d) => `ticket ${str(d && d.cancelled)} cancelled` });
        if (done) lookupPlayer(id);
      });
      actions.append(b);
    }
    if (p.connected) {
      const b = el('button', { type: 'button', id: 'disconnect', class: 'danger', text: 'Disconnect' });
      b.addEventListener('click', async () => {
        if (!window.confirm(`Disconnect ${id}?\n\nTheir socket is closed (code 4005); they keep their lobby place and solo ticket through the reconnect grace.`)) return;
        const done = await act(`Disconnect ${id}`, 'POST', `players/${enc(id)}/disconnect`, { button: b, describe: (d) => `${str(d && d.disconnected)} disconnected` });
        if (done) lookupPlayer(id);
      });
      actions.append(b);
    }
    if (l) {
      const b = el('button', { type: 'button', id: 'kick-from-lobby', class: 'danger', text: 'Kick from lobby' });
      b.addEventListener('click', () => kickMember(l.id, id, b, () => lookupPlayer(id)));
      actions.append(b);
    }
    return [
      kv([
        ['Player', code(id)],
        ['Connected', p.connected ? el('span', {}, badge('connected', 'state-up'), ' on node ', el('span', { class: 'mono', text: str(p.node) })) : badge('not connected', 'state-stopped')],
        ['Ticket', ticket],
        ['Lobby', lobby],
        ['Match', match],
      ]),
      actions.childElementCount ? actions : null,
      el('p', { class: 'hint asof', text: `as of ${fmtTime(Date.now())}` }),
    ].filter(Boolean);
  }

  async function kickMember(lobbyId, playerId, button, after) {
    if (!window.confirm(`Kick ${playerId} from lobby ${lobbyId}?`)) return;
    const done = await act(`Kick ${playerId}`, 'POST', `lobbies/${enc(lobbyId)}/kick`, { body: { playerId }, button, describe: (d) => `${str(d && d.kicked)} kicked from the lobby` });
    if (done && after) after();
  }

  function renderLobby(l) {
    const id = str(l.id);
    const members = Array.isArray(l.members) ? l.members : [];
    const props = Object.entries(l.props || {});
    const again = () => lookupLobby(id);
    const rows = members.map((mb) => {
      const kick = el('button', { type: 'button', class: 'small danger kick', text: 'Kick', 'data-kick': str(mb.playerId) });
      kick.addEventListener('click', () => kickMember(id, str(mb.playerId), kick, again));
      return el('tr', { 'data-member': str(mb.playerId) },
        el('td', {}, linkButton(mb.playerId, () => lookupPlayer(str(mb.playerId)), { title: 'Show this player' }), mb.playerId === l.ownerId ? badge('owner', 'owner') : null),
        el('td', { text: str(mb.name) || DASH }),
        el('td', {}, mb.ready ? badge('ready', 'state-up') : badge('not ready', 'state-stopped')),
        el('td', { text: fmtTime(mb.joinedAt) }),
        el('td', {}, kick));
    });
    const close = el('button', { type: 'button', id: 'close-lobby', class: 'danger', text: 'Close lobby' });
    close.addEventListener('click', async () => {
      if (!window.confirm(`Close lobby ${l.code || id}?\n\nEvery member is removed and its ticket, if any, is cancelled.`)) return;
      const done = await act(`Close lobby ${l.code || id}`, 'POST', `lobbies/${enc(id)}/close`, { button: close, describe: (d) => `lobby ${str(d && d.closed)} closed` });
      if (done) again();
    });
    return [
      kv([
        ['Lobby ID', code(id)],
        ['Join code', el('span', { class: 'mono join-code', text: str(l.code) })],
        ['Status', badge(str(l.status), `state-${str(l.status)}`)],
        ['Queue', str(l.queue)],
        ['Visibility', str(l.visibility)],
        ['Owner', linkButton(l.ownerId, () => lookupPlayer(str(l.ownerId)))],
        ['Members', `${members.length} / ${num(l.maxMembers)}`],
        ['Ticket', l.ticketId ? code(l.ticketId) : DASH],
        ['Created', el('span', { text: fmtTime(l.createdAt), title: isoTitle(l.createdAt) })],
        ['Properties', props.length ? el('ul', { class: 'chips' }, props.map(([k, v]) => el('li', { class: 'chip mono', text: `${k}=${v}` }))) : DASH],
      ]),
      el('div', { class: 'table-wrap' }, el('table', { class: 'members' },
        el('thead', {}, el('tr', {}, ['Player', 'Name', 'Ready', 'Joined', ''].map((h) => el('th', { scope: 'col', text: h })))),
        el('tbody', {}, rows))),
      el('div', { class: 'buttons' }, close),
      el('p', { class: 'hint asof', text: `as of ${fmtTime(Date.now())}` }),
    ];
  }

  function renderMatch(m) {
    const players = Array.isArray(m.players) ? m.players : [];
    const q = m.quality || null;
    return [
      kv([
        ['Match ID', code(m.matchId)],
        ['Queue', str(m.queue)],
        ['State', badge(str(m.state), `state-${str(m.state)}`)],
        ['Created', el('span', { text: `${fmtTime(m.createdAt)} (${fmtAgo(m.createdAt)})`, title: isoTitle(m.createdAt) })],
        ['Allocation', m.allocationMs != null ? fmtMs(m.allocationMs) : DASH],
        ['Attempts', num(m.attempts)],
        ['Party ID', m.partyId ? code(m.partyId) : DASH],
        ['Invitation', m.invitationId ? code(m.invitationId) : null],
        ['Regions', Array.isArray(m.regions) && m.regions.length ? m.regions.join(', ') : DASH],
        ['Teams', fmtTeams(m)],
        ['PlayFab error', m.lastError ? el('strong', { class: 'err-name', text: str(m.lastError) }) : null],
        ['Fail reason', m.failReason ? str(m.failReason) : null],
        ['Left', Array.isArray(m.left) && m.left.length ? m.left.join(', ') : null],
        ['Quality', q ? `skill spread ${str(q.skillSpread)} · team imbalance ${str(q.teamImbalance)} · oldest wait ${fmtMs(q.waitMs)}${Array.isArray(q.relaxed) && q.relaxed.length ? ` · relaxed ${q.relaxed.join(', ')}` : ''}` : null],
      ]),
      el('div', { class: 'table-wrap' }, el('table', { class: 'members' },
        el('thead', {}, el('tr', {}, ['Player', 'Name', 'Ticket', 'Lobby'].map((h) => el('th', { scope: 'col', text: h })))),
        el('tbody', {}, players.map((p) => el('tr', {},
          el('td', {}, linkButton(p.playerId, () => lookupPlayer(str(p.playerId)))),
          el('td', { text: str(p.name) || DASH }),
          el('td', { class: 'mono', text: str(p.ticketId) || DASH }),
          el('td', {}, p.lobbyId ? linkButton(p.lobbyId, () => lookupLobby(str(p.lobbyId))) : DASH)))))),
      el('p', { class: 'hint asof', text: `as of ${fmtTime(Date.now())}` }),
    ];
  }

  // ---------------------------------------------------------------- start

  clearData();
  if (sessionStorage.getItem(TOKEN_KEY)) start();
  else showSignin('', false);
})();
