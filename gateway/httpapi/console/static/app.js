// The gateway's web console: a small single-page app over the same HTTP API the CLI uses.
// Every API request carries the X-Gateway-Console header, without which the session cookie
// authorizes nothing (CSRF). No third-party code, no inline script or style (CSP).
'use strict';

// ---- API ----------------------------------------------------------------------------------

const CONSOLE_HEADER = 'X-Gateway-Console';

class APIError extends Error {
  constructor(status, type, message) {
    super(message || ('HTTP ' + status));
    this.status = status;
    this.type = type;
  }
}

async function api(path, opts = {}) {
  const headers = Object.assign({ [CONSOLE_HEADER]: '1' }, opts.headers || {});
  const r = await fetch(path, Object.assign({}, opts, { headers, credentials: 'same-origin', cache: 'no-store' }));
  if (r.status === 403 && r.headers.get('X-Amzn-ErrorType') === 'AccessDeniedException') {
    const e = await apiError(r);
    if (/console session/.test(e.message)) {
      showLogin('Your session ended: log in again.');
    }
    throw e;
  }
  return r;
}

async function apiError(r) {
  let msg = '';
  try {
    const b = await r.json();
    msg = b.message || b.Message || '';
  } catch (_) { /* not JSON */ }
  return new APIError(r.status, r.headers.get('X-Amzn-ErrorType') || '', msg || ('HTTP ' + r.status));
}

async function getJSON(path, opts) {
  const r = await api(path, opts);
  if (!r.ok) {
    throw await apiError(r);
  }
  return r.json();
}

const enc = encodeURIComponent;

// ---- DOM helpers ----------------------------------------------------------------------------

// el builds an element: attrs are attributes (on* keys become listeners), children are nodes
// or strings (always text, never HTML).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  append(e, children);
  return e;
}

function append(e, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function kv(pairs) {
  const dl = el('dl', { class: 'kv' });
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === '') continue;
    dl.append(el('dt', null, k), el('dd', null, typeof v === 'object' ? JSON.stringify(v) : v));
  }
  return dl;
}

function table(id, heads, rows, empty) {
  if (!rows.length) return el('p', { class: 'muted', id }, empty);
  return el('table', { id },
    el('thead', null, el('tr', null, heads.map(h => el('th', { scope: 'col' }, h)))),
    el('tbody', null, rows.map(r => el('tr', null, r.map(c => el('td', null, c))))));
}

function errorText(e) {
  return el('p', { class: 'error', role: 'alert' }, e.message || String(e));
}

// settle runs each promise to a value or null (one missing part does not fail a page).
async function settle(promises) {
  const rs = await Promise.allSettled(promises);
  return rs.map(r => (r.status === 'fulfilled' ? r.value : null));
}

// ---- Session and routing -------------------------------------------------------------------

const page = document.getElementById('page');
const loginSection = document.getElementById('login');
const loginForm = document.getElementById('login-form');
const loginError = document.getElementById('login-error');
let session = null;
// leave stops what the current page runs (log follow, metric refresh) when it is left.
let leave = () => {};

function showLogin(message) {
  leave();
  leave = () => {};
  session = null;
  page.replaceChildren();
  document.getElementById('nav').hidden = true;
  document.getElementById('who').hidden = true;
  loginSection.hidden = false;
  loginError.hidden = !message;
  loginError.textContent = message || '';
  document.getElementById('login-id').focus();
}

function showApp(s) {
  session = s;
  loginSection.hidden = true;
  document.getElementById('nav').hidden = false;
  const who = document.getElementById('who');
  who.hidden = false;
  document.getElementById('who-key').textContent = s.key_id ? s.key_id + ' (' + s.policy + ')' : 'open API: no access keys';
  document.getElementById('logout').hidden = !s.key_id;
  route();
}

loginForm.addEventListener('submit', async ev => {
  ev.preventDefault();
  loginError.hidden = true;
  const body = new URLSearchParams(new FormData(loginForm));
  const r = await fetch('login', { method: 'POST', body, credentials: 'same-origin' });
  if (!r.ok) {
    const e = await apiError(r);
    loginError.textContent = 'Login failed: ' + e.message;
    loginError.hidden = false;
    return;
  }
  document.getElementById('login-secret').value = '';
  showApp(await r.json());
});

document.getElementById('logout').addEventListener('click', async () => {
  await fetch('logout', { method: 'POST', headers: { [CONSOLE_HEADER]: '1' }, credentials: 'same-origin' });
  showLogin('');
});

const routes = [
  [/^#\/functions\/([^/]+)$/, m => functionPage(decodeURIComponent(m[1])), 'functions'],
  [/^#\/cluster$/, () => clusterPage(), 'cluster'],
  [/^#\/plugins$/, () => pluginsPage(), 'plugins'],
  [/^/, () => functionsPage(), 'functions'],
];

function route() {
  if (!session) return;
  leave();
  leave = () => {};
  const hash = location.hash || '#/functions';
  for (const [re, render, nav] of routes) {
    const m = hash.match(re);
    if (!m) continue;
    for (const a of document.querySelectorAll('#nav a')) {
      a.classList.toggle('current', a.dataset.page === nav);
      if (a.dataset.page === nav) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    page.replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
    Promise.resolve().then(() => render(m)).catch(e => page.replaceChildren(errorText(e)));
    return;
  }
}

window.addEventListener('hashchange', route);

(async function start() {
  try {
    const r = await fetch('session', { credentials: 'same-origin', cache: 'no-store' });
    const s = await r.json();
    if (s.login_required) showLogin(''); else showApp(s);
  } catch (e) {
    page.replaceChildren(errorText(e));
  }
})();

// ---- Functions list --------------------------------------------------------------------------

async function functionDetails(name) {
  const fn = '/2015-03-31/functions/' + enc(name);
  const [versions, aliases, urls, concurrency, triggers, mappings] = await settle([
    getJSON(fn + '/versions'),
    getJSON(fn + '/aliases'),
    getJSON('/2021-10-31/functions/' + enc(name) + '/urls'),
    getJSON('/2019-09-30/functions/' + enc(name) + '/concurrency'),
    getJSON('/v1/functions/' + enc(name) + '/triggers'),
    getJSON('/2015-03-31/event-source-mappings?FunctionName=' + enc(name)),
  ]);
  const trig = (triggers && triggers.Triggers) || [];
  // Triggers are event source mappings too: list each once, as a trigger.
  const seen = new Set(trig.map(t => t.uuid));
  return {
    versions: ((versions && versions.Versions) || []).map(v => v.Version).filter(v => v !== '$LATEST'),
    aliases: (aliases && aliases.Aliases) || [],
    urls: (urls && urls.FunctionUrlConfigs) || [],
    concurrency: concurrency ? concurrency.ReservedConcurrentExecutions : undefined,
    triggers: trig,
    mappings: ((mappings && mappings.EventSourceMappings) || []).filter(m => !seen.has(m.UUID)),
  };
}

async function functionsPage() {
  const list = await getJSON('/2015-03-31/functions');
  const fns = list.Functions || [];
  const details = await Promise.all(fns.map(f => functionDetails(f.FunctionName).catch(() => null)));
  const rows = fns.map((f, i) => {
    const d = details[i] || { versions: [], aliases: [], urls: [], triggers: [], mappings: [] };
    return [
      el('a', { href: '#/functions/' + enc(f.FunctionName) }, f.FunctionName),
      f.Runtime || f.PackageType || '',
      (f.MemorySize || '') + ' MB / ' + (f.Timeout || '') + ' s',
      d.versions.join(', ') || '—',
      d.aliases.map(a => a.Name + ' → ' + a.FunctionVersion).join(', ') || '—',
      d.urls.length ? d.urls.map(u => el('div', null, el('a', { href: u.FunctionUrl }, u.FunctionUrl), ' (' + u.AuthType + ')')) : '—',
      [...d.triggers.map(t => t.name + ' (' + t.plugin + ')'), ...d.mappings.map(m => m.EventSourceArn || m.UUID)].join(', ') || '—',
      d.concurrency === undefined || d.concurrency === null ? 'unreserved' : String(d.concurrency),
    ];
  });
  page.replaceChildren(
    el('h2', null, 'Functions'),
    table('functions-table', ['Name', 'Runtime', 'Memory / timeout', 'Versions', 'Aliases', 'URLs', 'Triggers', 'Reserved concurrency'], rows,
      'No functions yet: deploy some with gateway apply.'));
}

// ---- Function page ---------------------------------------------------------------------------

async function functionPage(name) {
  const fn = await getJSON('/2015-03-31/functions/' + enc(name));
  const c = fn.Configuration || {};
  const d = await functionDetails(name);
  const ctl = new AbortController();
  const timers = [];
  leave = () => { ctl.abort(); timers.forEach(clearInterval); };

  const charts = el('div', { class: 'charts', id: 'charts' }, el('p', { class: 'muted' }, 'Loading metrics…'));
  // Counted at its REPORT, an invocation from the form shows in the charts a moment after it.
  const refresh = () => loadMetrics(name, charts, ctl.signal);
  const logs = el('pre', { id: 'log-tail', 'aria-label': 'Log tail' });
  const logState = el('p', { class: 'muted', id: 'log-state' }, 'Connecting…');

  page.replaceChildren(
    el('h2', null, 'Function ', el('span', { id: 'function-name' }, name)),
    el('div', { class: 'grid2' },
      el('section', { class: 'card', 'aria-labelledby': 'cfg-title' },
        el('h3', { id: 'cfg-title' }, 'Configuration'),
        kv([
          ['ARN', c.FunctionArn], ['Runtime', c.Runtime], ['Package', c.PackageType], ['Handler', c.Handler],
          ['Memory', c.MemorySize && c.MemorySize + ' MB'], ['Timeout', c.Timeout && c.Timeout + ' s'],
          ['Architectures', (c.Architectures || []).join(', ')], ['State', c.State], ['Last modified', c.LastModified],
          ['Code size', c.CodeSize && c.CodeSize + ' bytes'], ['Code SHA-256', c.CodeSha256],
          ['Environment', c.Environment && c.Environment.Variables && Object.keys(c.Environment.Variables).join(', ')],
          ['Reserved concurrency', d.concurrency === undefined || d.concurrency === null ? 'unreserved' : String(d.concurrency)],
        ])),
      el('section', { class: 'card', 'aria-labelledby': 'rel-title' },
        el('h3', { id: 'rel-title' }, 'Versions, aliases, URLs, triggers'),
        kv([
          ['Versions', d.versions.join(', ') || '—'],
          ['Aliases', d.aliases.map(a => a.Name + ' → ' + a.FunctionVersion).join(', ') || '—'],
          ['URLs', d.urls.map(u => u.FunctionUrl + ' (' + u.AuthType + ')').join(', ') || '—'],
          ['Triggers', d.triggers.map(t => t.name + ' (' + t.plugin + ': ' + t.source + ')').join(', ') || '—'],
          ['Event source mappings', d.mappings.map(m => (m.EventSourceArn || m.UUID) + ' ' + (m.State || '')).join(', ') || '—'],
        ]))),
    el('section', { class: 'card', 'aria-labelledby': 'metrics-title' },
      el('h3', { id: 'metrics-title' }, 'Metrics, last hour'), charts),
    invokeSection(name, () => setTimeout(refresh, 1500)),
    el('section', { class: 'card', 'aria-labelledby': 'logs-title' },
      el('h3', { id: 'logs-title' }, 'Log tail'), logState, logs));

  refresh();
  timers.push(setInterval(refresh, 30000));
  followLogs(name, logs, logState, ctl.signal);
}

// ---- Metrics charts

const chartDefs = [
  { title: 'Invocations', series: [['invocations', 'invocations']] },
  { title: 'Errors', series: [['errors', 'errors']] },
  { title: 'Duration (ms)', ms: true, series: [['duration_p50_ms', 'p50'], ['duration_p99_ms', 'p99']] },
  { title: 'Throttles', series: [['throttles', 'throttles']] },
  { title: 'Cold starts', series: [['cold_starts', 'cold starts']] },
];

async function loadMetrics(name, box, signal) {
  let m;
  try {
    const r = await api('/v1/functions/' + enc(name) + '/metrics?minutes=60', { signal });
    if (!r.ok) throw await apiError(r);
    m = await r.json();
  } catch (e) {
    if (signal.aborted) return;
    box.replaceChildren(el('p', { class: 'muted', id: 'metrics-unavailable' }, 'Metrics unavailable: ' + e.message));
    return;
  }
  const points = m.points || [];
  const figs = chartDefs.map(d => chart(d, points, m.step_seconds || 60));
  if (m.nodes_failed && m.nodes_failed.length) {
    figs.push(el('p', { class: 'error' }, 'No metrics from: ' + m.nodes_failed.join(', ')));
  }
  box.replaceChildren(...figs);
}

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of children) e.append(c);
  return e;
}

// chart draws one line per series over the points, 0 at the bottom, the largest value on top.
function chart(def, points, step) {
  const W = 320, H = 120, L = 36, R = 6, T = 8, B = 18;
  let max = 0;
  for (const p of points) for (const [k] of def.series) max = Math.max(max, Number(p[k]) || 0);
  const top = max > 0 ? niceCeil(max) : 1;
  const x = i => L + (points.length > 1 ? (i * (W - L - R)) / (points.length - 1) : 0);
  const y = v => T + (H - T - B) * (1 - (Number(v) || 0) / top);
  const g = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': def.title + ' over the last ' + Math.round(points.length * step / 60) + ' minutes' },
    svg('line', { class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B }),
    svg('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B }),
    label(L - 4, T + 4, fmtNum(top), 'end'),
    label(L - 4, H - B, '0', 'end'),
    label(L, H - 4, '-' + Math.round(points.length * step / 60) + ' min', 'start'),
    label(W - R, H - 4, 'now', 'end'));
  def.series.forEach(([k], i) => {
    g.append(svg('polyline', { class: 'series' + i, 'data-series': k, points: points.map((p, j) => x(j).toFixed(1) + ',' + y(p[k]).toFixed(1)).join(' ') }));
  });
  // Counts are summed over the hour; durations are the latest minute with invocations.
  const legend = def.series.map(([k, l], i) => {
    let v;
    if (def.ms) {
      const p = points.filter(p => Number(p.invocations) > 0).pop();
      v = p ? fmtNum(Number(p[k]) || 0) + ' ms latest' : 'none';
    } else {
      v = fmtNum(points.reduce((s, p) => s + (Number(p[k]) || 0), 0)) + ' in the hour';
    }
    return el('span', { class: 'legend legend' + i }, l + ': ' + v);
  });
  return el('figure', { class: 'chart', 'data-chart': def.series[0][0] }, el('figcaption', null, def.title, el('span', { class: 'legends' }, legend)), g);
}

function label(x, y, text, anchor) {
  const t = svg('text', { x, y, 'text-anchor': anchor });
  t.textContent = text;
  return t;
}

function niceCeil(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmtNum(v) {
  return Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 2 : 1);
}

// ---- Log tail

// followLogs streams the function's log (the last 50 lines, then new ones) into pre. It reads
// newline-delimited JSON objects (time, node, request_id, message) or plain "<time> <line>"
// text, whichever the node answers.
async function followLogs(name, pre, state, signal) {
  const keep = 500;
  const add = line => {
    pre.append(line + '\n');
    while (pre.childNodes.length > keep) pre.firstChild.remove();
    pre.scrollTop = pre.scrollHeight;
  };
  try {
    const r = await api('/v1/functions/' + enc(name) + '/logs?lines=50&follow=true&format=json', { signal });
    if (!r.ok) throw await apiError(r);
    const ct = (r.headers.get('Content-Type') || '').toLowerCase();
    const json = ct.startsWith('application/x-ndjson') || ct.startsWith('application/json');
    state.textContent = 'Following (newest at the bottom).';
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line) add(formatLogLine(line, json));
      }
    }
    state.textContent = 'The node ended the log stream.';
  } catch (e) {
    if (!signal.aborted) state.textContent = 'Log tail unavailable: ' + e.message;
  }
}

function formatLogLine(line, json) {
  if (json) {
    try {
      const o = JSON.parse(line);
      return [o.time, o.node, o.request_id, o.message].filter(Boolean).join(' ');
    } catch (_) {
      return line;
    }
  }
  return line;
}

// ---- Invoke form

function invokeSection(name, invoked) {
  const payload = el('textarea', { id: 'invoke-payload', name: 'payload', spellcheck: 'false' }, '{}');
  const qualifier = el('input', { id: 'invoke-qualifier', name: 'qualifier', placeholder: '$LATEST' });
  const out = el('div', { id: 'invoke-output' });
  const form = el('form', { id: 'invoke-form', class: 'invoke' },
    el('label', { for: 'invoke-payload' }, 'Payload (JSON)'), payload,
    el('label', { for: 'invoke-qualifier' }, 'Version or alias (optional)'), qualifier,
    el('p', null, el('button', { type: 'submit', id: 'invoke-submit' }, 'Invoke')));
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    out.replaceChildren(el('p', { class: 'muted' }, 'Invoking…'));
    try {
      out.replaceChildren(...await invoke(name, payload.value, qualifier.value.trim()));
      invoked();
    } catch (e) {
      out.replaceChildren(errorText(e));
    }
  });
  return el('section', { class: 'card', 'aria-labelledby': 'invoke-title' },
    el('h3', { id: 'invoke-title' }, 'Invoke'), form, out);
}

async function invoke(name, payload, qualifier) {
  let path = '/2015-03-31/functions/' + enc(name) + '/invocations';
  if (qualifier) path += '?Qualifier=' + enc(qualifier);
  const r = await api(path, { method: 'POST', body: payload, headers: { 'Content-Type': 'application/json', 'X-Amz-Log-Type': 'Tail' } });
  const body = await r.text();
  if (!r.ok) {
    let msg = body;
    try { msg = JSON.parse(body).message || body; } catch (_) { /* text */ }
    return [el('p', { class: 'error', id: 'invoke-status', role: 'alert' }, 'HTTP ' + r.status + ' ' + (r.headers.get('X-Amzn-ErrorType') || '') + ': ' + msg)];
  }
  const fnErr = r.headers.get('X-Amz-Function-Error');
  const tail = decodeBase64(r.headers.get('X-Amz-Log-Result') || '');
  const report = tail.split('\n').find(l => l.startsWith('REPORT ')) || '';
  let pretty = body;
  try { pretty = JSON.stringify(JSON.parse(body), null, 2); } catch (_) { /* not JSON */ }
  return [
    el('p', { id: 'invoke-status', class: fnErr ? 'error' : 'ok' },
      fnErr ? 'Function error (' + fnErr + ')' : 'Succeeded',
      ', version ' + (r.headers.get('X-Amz-Executed-Version') || '?') + ', request ' + (r.headers.get('X-Amzn-RequestId') || '?')),
    el('h4', null, 'Response'), el('pre', { id: 'invoke-result' }, pretty),
    el('h4', null, 'Report'), el('pre', { id: 'invoke-report' }, report || '(no REPORT line in the log tail)'),
    el('h4', null, 'Log tail (last 4 KB)'), el('pre', { id: 'invoke-logs' }, tail),
  ];
}

function decodeBase64(s) {
  try {
    const bin = atob(s);
    const bytes = Uint8Array.from(bin, ch => ch.charCodeAt(0));
    return new TextDecoder().decode(bytes);
  } catch (_) {
    return '';
  }
}

// ---- Cluster -------------------------------------------------------------------------------

async function clusterPage() {
  const [members, status, health] = await settle([
    getJSON('/v1/cluster/members'), getJSON('/v1/status'), getJSON('/v1/health')]);
  const raft = (status && status.raft) || {};
  const rows = ((members && members.members) || []).map(m => [
    m.id, m.address, m.voter ? 'voter' : 'non-voter',
    el('span', null,
      m.leader ? el('span', { class: 'badge leader' }, 'leader') : '',
      status && m.id === status.node_name ? el('span', { class: 'badge' }, ' this node') : ''),
  ]);
  page.replaceChildren(
    el('h2', null, 'Cluster'),
    el('section', { class: 'card', 'aria-labelledby': 'nodes-title' },
      el('h3', { id: 'nodes-title' }, 'Nodes'),
      members ? table('nodes-table', ['Node', 'Address', 'Role', ''], rows, 'No members.') : el('p', { class: 'error' }, 'Members unavailable.')),
    el('div', { class: 'grid2' },
      el('section', { class: 'card', 'aria-labelledby': 'health-title' },
        el('h3', { id: 'health-title' }, 'Health of this node'),
        health ? el('div', { id: 'health' },
          el('p', null, el('span', { class: 'badge ' + (health.status === 'ok' ? 'good' : 'bad') }, health.status || '?')),
          table('health-checks', ['Check', 'Status', 'Detail'], Object.entries(health.checks || {}).map(([k, c]) => [
            k, el('span', { class: 'badge ' + (c.status === 'ok' ? 'good' : 'bad') }, c.status), c.detail || '']), 'No checks.'))
          : el('p', { class: 'error' }, 'Health unavailable.')),
      el('section', { class: 'card', 'aria-labelledby': 'node-title' },
        el('h3', { id: 'node-title' }, 'This node'),
        status ? kv([
          ['Node', status.node_name], ['Version', status.version], ['Sandbox driver', status.driver],
          ['Raft state', raft.state], ['Term', raft.term], ['Last log index', raft.last_log_index],
          ['Applied index', raft.applied_index], ['Last contact', raft.last_contact],
        ]) : el('p', { class: 'error' }, 'Status unavailable.'))));
}

// ---- Plugins and async backlogs --------------------------------------------------------------

async function pluginsPage() {
  const [status, list] = await settle([getJSON('/v1/status'), getJSON('/2015-03-31/functions')]);
  const plugins = (status && status.plugins) || [];
  const fns = (list && list.Functions) || [];
  const backlogs = await Promise.all(fns.map(f =>
    getJSON('/v1/functions/' + enc(f.FunctionName) + '/async').catch(e => ({ Function: f.FunctionName, error: e.message }))));
  page.replaceChildren(
    el('h2', null, 'Plugins and async backlogs'),
    el('section', { class: 'card', 'aria-labelledby': 'plugins-title' },
      el('h3', { id: 'plugins-title' }, 'Plugins'),
      table('plugins-table', ['Plugin', 'Kinds', 'State', 'PID', 'Restarts', 'Since', 'Mappings', 'Last error'], plugins.map(p => [
        p.name, (p.kinds || []).join(', '),
        el('span', { class: 'badge ' + (p.state === 'running' ? 'good' : 'bad') }, p.state),
        p.pid ? String(p.pid) : '—', String(p.restarts || 0), p.since || '',
        String((p.mappings || []).length), p.last_error || '',
      ]), 'No plugins configured on this node.')),
    el('section', { class: 'card', 'aria-labelledby': 'async-title' },
      el('h3', { id: 'async-title' }, 'Asynchronous invocations'),
      table('async-table', ['Function', 'Waiting', 'In flight', 'Oldest (s)', 'Succeeded', 'Retried', 'Failed for good', 'Note'], backlogs.map(b => b.error
        ? [b.Function, '—', '—', '—', '—', '—', '—', b.error]
        : [b.Function, String(b.Waiting), String(b.InFlight), fmtNum(b.OldestAgeSeconds || 0),
          String((b.Counters || {}).Succeeded || 0), String((b.Counters || {}).Retried || 0),
          String(((b.Counters || {}).RetriesExhausted || 0) + ((b.Counters || {}).Expired || 0)),
          (b.Unanswered || []).length ? 'no answer from ' + b.Unanswered.join(', ') : '']), 'No functions.')));
}
