import { createHash } from 'node:crypto';

// The page is one self-contained document: no framework, no CDN, no build step. Its script reads
// the SSE stream with fetch() rather than EventSource, because EventSource cannot send the
// Authorization header and the API key must not travel in a URL (logs, history, Referer).
// Kept free of backticks and "${" so it can live in this template literal unchanged.

const STYLE = `
:root { color-scheme: light dark; --held: #2e7d32; --loading: #f9a825; --muted: #888; --line: #8884; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 1rem 1.5rem; }
h1 { font-size: 1.2rem; margin: 0 0 .5rem; }
h2 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
#status { font-size: .85rem; padding: .1rem .5rem; border-radius: .6rem; background: #8883; }
#status.live { background: #2e7d3233; }
#status.down { background: #c6282833; }
.tiles { display: flex; flex-wrap: wrap; gap: .6rem; margin: .6rem 0; }
.tile { border: 1px solid var(--line); border-radius: .4rem; padding: .3rem .7rem; min-width: 6rem; }
.tile b { display: block; font-size: 1.3rem; }
.tile span { color: var(--muted); font-size: .8rem; }
table { border-collapse: collapse; }
th, td { border: 1px solid var(--line); padding: .2rem .5rem; text-align: left; }
th.label { writing-mode: vertical-rl; transform: rotate(180deg); font-weight: normal; }
td.cell { text-align: center; width: 1.6rem; }
td.held { background: var(--held); color: #fff; }
td.loading { background: var(--loading); color: #000; }
.draining { color: var(--muted); font-style: italic; }
.charts { display: flex; gap: 1.5rem; flex-wrap: wrap; }
.chart svg { display: block; border: 1px solid var(--line); }
.chart rect.loads { fill: var(--held); }
.chart rect.evictions { fill: #c62828; }
#events { list-style: none; padding: 0; margin: 0; max-height: 22rem; overflow: auto; font-family: ui-monospace, monospace; font-size: .8rem; }
#events li { padding: .1rem 0; border-bottom: 1px solid var(--line); }
.kind { display: inline-block; width: 6.5rem; }
.kind-joined, .kind-loaded { color: var(--held); }
.kind-left, .kind-evicted, .kind-load_failed { color: #c62828; }
#keyform { margin: .6rem 0; }
.empty { color: var(--muted); }
`;

const SCRIPT = `
(function () {
  'use strict';
  var STORE = 'smart-routing-api-key';
  var MAX_EVENTS = 200;
  var events = [];
  var lastSeq = 0;
  var retryMs = 500;
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // A key given as /ui#key=... is moved to sessionStorage and out of the address bar.
  function readKey() {
    var m = /[#&]key=([^&]*)/.exec(location.hash);
    if (m) {
      sessionStorage.setItem(STORE, decodeURIComponent(m[1]));
      history.replaceState(null, '', location.pathname + location.search);
    }
    return sessionStorage.getItem(STORE) || '';
  }

  function setStatus(text, cls) {
    var s = $('status');
    s.textContent = text;
    s.className = cls || '';
  }

  function fmtMs(ms) { return ms < 1000 ? Math.round(ms) + ' ms' : (ms / 1000).toFixed(1) + ' s'; }
  function fmtTime(at) { return new Date(at).toLocaleTimeString(); }

  function tile(value, name, id) {
    var t = el('div', { class: 'tile', 'data-tile': id });
    t.appendChild(el('b', null, String(value)));
    t.appendChild(el('span', null, name));
    return t;
  }

  function renderSnapshot(s) {
    var tiles = $('tiles');
    tiles.replaceChildren(
      tile(s.workers.length, 'workers', 'workers'),
      tile(s.inFlight, 'in flight', 'in-flight'),
      tile(s.queued, 'queued', 'queued'),
      tile(s.hitRate === null ? '-' : Math.round(s.hitRate * 100) + ' %', 'hit rate (' + s.hits + ' / ' + (s.hits + s.misses) + ')', 'hit-rate'),
      tile(s.loads, 'loads', 'loads'),
      tile(s.evictions, 'evictions', 'evictions'),
      tile(s.retries, 'retries', 'retries')
    );
    $('policy').textContent = 'policy ' + s.policy;

    var grid = $('grid');
    if (s.workers.length === 0) {
      grid.replaceChildren(el('p', { class: 'empty' }, 'No worker connected.'));
    } else {
      var table = el('table');
      var head = el('tr');
      head.appendChild(el('th', null, 'worker'));
      head.appendChild(el('th', null, 'state'));
      head.appendChild(el('th', null, 'in flight'));
      head.appendChild(el('th', null, 'labels'));
      s.labels.forEach(function (l) { head.appendChild(el('th', { class: 'label' }, l)); });
      table.appendChild(head);
      s.workers.forEach(function (w) {
        var row = el('tr', { 'data-worker': w.id, class: w.state === 'draining' ? 'draining' : '' });
        row.appendChild(el('td', null, w.id));
        row.appendChild(el('td', { 'data-state': w.state }, w.state + (w.blocked ? ' (blocked)' : '')));
        row.appendChild(el('td', { 'data-in-flight': String(w.inFlight) }, w.inFlight + ' / ' + w.slots));
        row.appendChild(el('td', null, w.labels.length + ' / ' + w.labelCapacity));
        var status = {};
        w.labels.forEach(function (l) { status[l.label] = l.status; });
        s.labels.forEach(function (l) {
          var st = status[l];
          var td = el('td', { class: 'cell' + (st ? ' ' + st : ''), 'data-label': l, title: l + ': ' + (st || 'not held') }, st === 'held' ? '\\u25CF' : st === 'loading' ? '\\u25D0' : '');
          if (st) td.setAttribute('data-status', st);
          row.appendChild(td);
        });
        table.appendChild(row);
      });
      grid.replaceChildren(table);
    }

    var queues = $('queues');
    if (s.queues.length === 0) {
      queues.replaceChildren(el('p', { class: 'empty' }, 'No task waiting.'));
    } else {
      var qt = el('table');
      var qh = el('tr');
      ['queue', 'waiting', 'oldest wait'].forEach(function (h) { qh.appendChild(el('th', null, h)); });
      qt.appendChild(qh);
      s.queues.forEach(function (q) {
        var r = el('tr', { 'data-queue': q.label });
        r.appendChild(el('td', null, q.label === '*' ? '* (common)' : q.label));
        r.appendChild(el('td', null, String(q.depth)));
        r.appendChild(el('td', null, fmtMs(q.oldestWaitMs)));
        qt.appendChild(r);
      });
      queues.replaceChildren(qt);
    }
    renderChart('chart-loads', s.series.loads, 'loads', s.series);
    renderChart('chart-evictions', s.series.evictions, 'evictions', s.series);
  }

  function renderChart(id, values, cls, series) {
    var NS = 'http://www.w3.org/2000/svg';
    var w = 300, h = 60, n = values.length;
    var max = Math.max(1, Math.max.apply(null, values));
    var svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('width', w);
    svg.setAttribute('height', h);
    svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
    var bw = w / n;
    values.forEach(function (v, i) {
      var bh = (v / max) * (h - 4);
      var r = document.createElementNS(NS, 'rect');
      r.setAttribute('class', cls);
      r.setAttribute('x', String(i * bw + 1));
      r.setAttribute('y', String(h - bh));
      r.setAttribute('width', String(Math.max(1, bw - 2)));
      r.setAttribute('height', String(bh));
      var t = document.createElementNS(NS, 'title');
      t.textContent = v + ' ' + cls + ' from ' + fmtTime(series.startsAt + i * series.bucketMs);
      r.appendChild(t);
      svg.appendChild(r);
    });
    var box = $(id);
    box.replaceChildren(svg);
    var total = values.reduce(function (a, b) { return a + b; }, 0);
    box.appendChild(el('span', null, total + ' ' + cls + ' in the last ' + Math.round(n * series.bucketMs / 60000) + ' min, max ' + max + ' per ' + series.bucketMs / 1000 + ' s'));
  }

  function describe(e) {
    switch (e.kind) {
      case 'joined': return e.workerId + ' joined';
      case 'left': return e.workerId + ' left' + (e.detail ? ': ' + e.detail : '');
      case 'loaded': return e.workerId + ' loaded ' + e.label + (e.durationMs ? ' in ' + fmtMs(e.durationMs) : '');
      case 'evicted': return e.workerId + ' evicted ' + e.label;
      case 'load_failed': return e.workerId + ' failed to load ' + e.label + (e.detail ? ': ' + e.detail : '');
      default: return e.workerId + ' ' + e.kind;
    }
  }

  function addEvent(e) {
    if (e.seq <= lastSeq) return;
    lastSeq = e.seq;
    events.push(e);
    if (events.length > MAX_EVENTS) events.shift();
    var li = el('li', { 'data-kind': e.kind, 'data-worker': e.workerId });
    li.appendChild(el('span', null, fmtTime(e.at) + ' '));
    li.appendChild(el('span', { class: 'kind kind-' + e.kind }, e.kind));
    li.appendChild(el('span', null, describe(e)));
    var list = $('events');
    list.insertBefore(li, list.firstChild);
    while (list.children.length > MAX_EVENTS) list.removeChild(list.lastChild);
  }

  function onMessage(type, data) {
    var value = JSON.parse(data);
    if (type === 'snapshot') renderSnapshot(value);
    else if (type === 'fleet') addEvent(value);
    else if (type === 'history') value.forEach(addEvent);
  }

  function askForKey(message) {
    setStatus(message, 'down');
    $('keyform').hidden = false;
    $('key').focus();
  }

  async function connect() {
    var key = readKey();
    var headers = { accept: 'text/event-stream' };
    if (key) headers.authorization = 'Bearer ' + key;
    setStatus('connecting', '');
    var res;
    try {
      res = await fetch(location.pathname.replace(/\\/+$/, '') + '/events', { headers: headers, cache: 'no-store' });
    } catch (err) {
      return retry('dispatcher unreachable');
    }
    if (res.status === 401) return askForKey(key ? 'the API key was refused' : 'this dispatcher needs an API key');
    if (!res.ok || !res.body) return retry('stream refused (HTTP ' + res.status + ')');
    $('keyform').hidden = true;
    setStatus('live', 'live');
    retryMs = 500;
    var reader = res.body.getReader();
    var decoder = new TextDecoder();
    var buffer = '';
    try {
      for (;;) {
        var chunk = await reader.read();
        if (chunk.done) break;
        buffer += decoder.decode(chunk.value, { stream: true });
        var end;
        while ((end = buffer.indexOf('\\n\\n')) >= 0) {
          var block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          var type = 'message', data = [];
          block.split('\\n').forEach(function (line) {
            if (line.indexOf('event:') === 0) type = line.slice(6).trim();
            else if (line.indexOf('data:') === 0) data.push(line.slice(5).replace(/^ /, ''));
          });
          if (data.length > 0) onMessage(type, data.join('\\n'));
        }
      }
    } catch (err) {
      // The stream broke (dispatcher restarted or network): reconnect below.
    }
    retry('disconnected');
  }

  function retry(why) {
    setStatus(why + ', retrying', 'down');
    setTimeout(connect, retryMs);
    retryMs = Math.min(5000, retryMs * 2);
  }

  $('keyform').addEventListener('submit', function (ev) {
    ev.preventDefault();
    sessionStorage.setItem(STORE, $('key').value);
    $('key').value = '';
    connect();
  });
  connect();
})();
`;

/** The live view's HTML document (served at GET /ui). */
export const LIVE_VIEW_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>smart-routing fleet</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<h1>smart-routing fleet <span id="status">connecting</span> <small id="policy"></small></h1>
<form id="keyform" hidden>
  <label>API key <input id="key" type="password" autocomplete="off"></label>
  <button type="submit">Connect</button>
</form>
<div class="tiles" id="tiles"></div>
<h2>Workers x labels <small>(&#x25CF; held, &#x25D0; loading)</small></h2>
<div id="grid"></div>
<h2>Queues</h2>
<div id="queues"></div>
<h2>Loads and evictions</h2>
<div class="charts"><div class="chart" id="chart-loads"></div><div class="chart" id="chart-evictions"></div></div>
<h2>Recent events</h2>
<ul id="events"></ul>
<script>${SCRIPT}</script>
</body>
</html>
`;

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

/**
 * The Content-Security-Policy for the page: only its own inline script and style (by hash), fetches
 * to its own origin, nothing else (no CDN, no frames, no forms to elsewhere).
 */
export const LIVE_VIEW_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');
