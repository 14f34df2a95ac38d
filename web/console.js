// The consulate console: sign in, the office's alerts newest first, one alert's history and
// place, acknowledge and resolve. The credential lives in this tab only (sessionStorage).
'use strict';

const CONFIG = window.ALERT_BUTTON_CONFIG || {};
const API = CONFIG.apiBase || '';
const REFRESH_MS = 5000;
const PAGE = Math.min(Math.max(Number(new URLSearchParams(location.search).get('limit')) || 20, 1), 100);
// The projection of us-outline.svg (see tests/browser/make-outline.mjs).
const K = 10 * Math.cos((38 * Math.PI) / 180);
const project = (lat, lon) => [(lon + 125) * K, (50 - lat) * 10];

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem('ab.staff');
let claims = null;
let cursors = [null]; // the cursor of each page seen, so "first page" can go back
let page = 0;
let current = null; // the open alert's id
let timer = null;

function notice(text) { $('notice').textContent = text || ''; }

function decodeClaims(jwt) {
  const part = jwt.split('.')[1];
  if (!part) throw new Error('not a JWT');
  const json = atob(part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '='));
  const value = JSON.parse(decodeURIComponent(Array.from(json, (c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0')).join('')));
  if (!value['custom:consulate_id']) throw new Error('the credential names no consulate');
  if (value.exp && value.exp * 1000 < Date.now()) throw new Error('the credential has expired');
  return value;
}

async function api(method, path, body) {
  const headers = { authorization: 'Bearer ' + token };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await response.json(); } catch { /* empty */ }
  if (response.status === 401) { signOut('La credencial ya no vale · The credential is no longer valid'); throw new Error('401'); }
  if (!response.ok) throw new Error((data && data.error && (data.error.field || data.error.code)) || String(response.status));
  return data;
}

function show(id) {
  for (const s of ['sign-in', 'list', 'detail']) $(s).hidden = s !== id;
  $('sign-out').hidden = id === 'sign-in';
}

function consulate() {
  return claims['custom:national'] === 'true' && $('national-consulate').value.trim()
    ? $('national-consulate').value.trim()
    : claims['custom:consulate_id'];
}

function signIn(jwt) {
  try { claims = decodeClaims(jwt.trim()); } catch (e) { notice('Credencial no válida · Invalid credential: ' + e.message); return; }
  token = jwt.trim();
  sessionStorage.setItem('ab.staff', token);
  $('token').value = '';
  const national = claims['custom:national'] === 'true';
  $('national-consulate').hidden = !national;
  $('national-label').hidden = !national;
  if (national && !$('national-consulate').value) $('national-consulate').value = claims['custom:consulate_id'];
  notice('');
  openList();
}

function signOut(message) {
  sessionStorage.removeItem('ab.staff');
  token = null;
  claims = null;
  clearInterval(timer);
  show('sign-in');
  notice(message || '');
}

function when(iso) { return new Date(iso).toLocaleString(); }

// --- the list -----------------------------------------------------------------------------

function openList() {
  current = null;
  show('list');
  $('consulate-id').textContent = consulate();
  refreshList();
  clearInterval(timer);
  timer = setInterval(() => (current ? refreshDetail() : refreshList()), REFRESH_MS);
}

async function refreshList() {
  const query = new URLSearchParams({ status: $('status-filter').value, limit: String(PAGE) });
  if (cursors[page]) query.set('cursor', cursors[page]);
  let data;
  try { data = await api('GET', `/v1/consulates/${encodeURIComponent(consulate())}/alerts?${query}`); } catch (e) { notice('Error: ' + e.message); return; }
  notice('');
  const rows = data.alerts.map((a) => {
    const tr = document.createElement('tr');
    const cell = (text) => { const td = document.createElement('td'); td.textContent = text; tr.append(td); return td; };
    cell(when(a.created_at));
    cell(a.display_name || '—');
    const status = cell(a.status);
    if (a.duress) { const d = document.createElement('span'); d.className = 'duress'; d.textContent = ' COACCIÓN · DURESS'; status.append(' ', d); }
    const open = document.createElement('button');
    open.type = 'button';
    open.className = 'link';
    open.textContent = 'Abrir · Open ' + a.alert_id.slice(0, 8);
    open.dataset.alertId = a.alert_id;
    open.addEventListener('click', () => openDetail(a.alert_id));
    const td = document.createElement('td');
    td.append(open);
    tr.append(td);
    return tr;
  });
  $('alerts').replaceChildren(...rows);
  $('empty').hidden = rows.length > 0;
  cursors[page + 1] = data.next_cursor || null;
  $('next-page').disabled = !data.next_cursor;
  $('first-page').disabled = page === 0;
}

// --- one alert ----------------------------------------------------------------------------

function openDetail(id) {
  current = id;
  // Nothing of the previous alert may show while this one loads.
  for (const el of ['d-person', 'd-status', 'd-location']) $(el).textContent = '';
  $('history').replaceChildren();
  $('deliveries-rows').replaceChildren();
  $('d-duress').hidden = true;
  for (const el of ['point', 'accuracy']) { $(el).removeAttribute('cx'); $(el).removeAttribute('cy'); }
  $('ack-form').hidden = true;
  $('resolve-form').hidden = true;
  show('detail');
  refreshDetail();
}

async function refreshDetail() {
  let a;
  try { a = await api('GET', `/v1/alerts/${current}`); } catch (e) { notice('Error: ' + e.message); return; }
  $('d-person').textContent = a.display_name || a.person_id;
  $('d-status').textContent = a.status;
  $('d-duress').hidden = !a.duress;
  const l = a.location;
  $('d-location').textContent = `${l.lat.toFixed(4)}, ${l.lon.toFixed(4)}` + (l.accuracy_m ? ` (±${Math.round(l.accuracy_m)} m)` : '');
  const [x, y] = project(l.lat, l.lon);
  $('point').setAttribute('cx', x.toFixed(1));
  $('point').setAttribute('cy', y.toFixed(1));
  $('accuracy').setAttribute('cx', x.toFixed(1));
  $('accuracy').setAttribute('cy', y.toFixed(1));
  $('accuracy').setAttribute('r', l.accuracy_m ? Math.max(4, (l.accuracy_m / 111000) * 10).toFixed(1) : '0');
  if (a.consulate) {
    const [ox, oy] = project(a.consulate.latitude, a.consulate.longitude);
    $('office').setAttribute('x', (ox - 3.5).toFixed(1));
    $('office').setAttribute('y', (oy - 3.5).toFixed(1));
  }
  $('history').replaceChildren(...a.history.map((h) => {
    const li = document.createElement('li');
    const extra = [h.reason, h.outcome, h.note, h.escalated_to, h.location && `${h.location.lat.toFixed(4)}, ${h.location.lon.toFixed(4)}`].filter(Boolean);
    li.textContent = `${when(h.at)} — ${h.event}${extra.length ? ': ' + extra.join(' · ') : ''}`;
    return li;
  }));
  // Every send, a failed one as plainly as a delivered one: staff call whom a text did not reach.
  $('deliveries-rows').replaceChildren(...(a.deliveries || []).map((d) => {
    const tr = document.createElement('tr');
    tr.dataset.status = d.status;
    for (const value of [when(d.at), d.audience, d.channel, d.recipient, d.status]) {
      const td = document.createElement('td');
      td.textContent = value;
      tr.append(td);
    }
    return tr;
  }));
  $('ack-form').hidden = a.status !== 'open';
  $('resolve-form').hidden = !['open', 'acknowledged'].includes(a.status);
}

async function acknowledge(event) {
  event.preventDefault();
  try {
    await api('POST', `/v1/alerts/${current}/acknowledge`, { note: $('ack-note').value.trim() || null });
    $('ack-note').value = '';
    notice('Atendida · Acknowledged');
  } catch (e) { notice('Error: ' + e.message); }
  refreshDetail();
}

async function resolve(event) {
  event.preventDefault();
  try {
    await api('POST', `/v1/alerts/${current}/resolve`, { outcome: $('outcome').value, note: $('resolve-note').value.trim() || null });
    $('resolve-note').value = '';
    notice('Resuelta · Resolved');
  } catch (e) { notice('Error: ' + e.message); }
  refreshDetail();
}

// --- Cognito managed login: authorization code with PKCE ---------------------------------

const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const redirectUri = () => location.origin + '/console';

async function cognitoStart() {
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = b64url(crypto.getRandomValues(new Uint8Array(16)));
  sessionStorage.setItem('ab.pkce', JSON.stringify({ verifier, state }));
  const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  const query = new URLSearchParams({
    response_type: 'code', client_id: CONFIG.cognito.clientId, redirect_uri: redirectUri(),
    scope: 'openid email', state, code_challenge: challenge, code_challenge_method: 'S256',
  });
  location.assign(`https://${CONFIG.cognito.domain}/oauth2/authorize?${query}`);
}

async function cognitoFinish(params) {
  const saved = JSON.parse(sessionStorage.getItem('ab.pkce') || 'null');
  sessionStorage.removeItem('ab.pkce');
  history.replaceState(null, '', '/console');
  if (!saved || saved.state !== params.get('state')) { notice('Inicio de sesión no válido · Invalid sign-in'); return; }
  const response = await fetch(`https://${CONFIG.cognito.domain}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code', client_id: CONFIG.cognito.clientId, code: params.get('code'),
      redirect_uri: redirectUri(), code_verifier: saved.verifier,
    }),
  });
  if (!response.ok) { notice('Inicio de sesión fallido · Sign-in failed'); return; }
  const { id_token: idToken } = await response.json();
  signIn(idToken);
}

function init() {
  $('token-form').addEventListener('submit', (e) => { e.preventDefault(); signIn($('token').value); });
  $('sign-out').addEventListener('click', () => signOut());
  $('status-filter').addEventListener('change', () => { cursors = [null]; page = 0; refreshList(); });
  $('national-consulate').addEventListener('change', () => { cursors = [null]; page = 0; $('consulate-id').textContent = consulate(); refreshList(); });
  $('next-page').addEventListener('click', () => { if (cursors[page + 1]) { page += 1; refreshList(); } });
  $('first-page').addEventListener('click', () => { cursors = [null]; page = 0; refreshList(); });
  $('back').addEventListener('click', openList);
  $('ack-form').addEventListener('submit', acknowledge);
  $('resolve-form').addEventListener('submit', resolve);
  const params = new URLSearchParams(location.search);
  if (CONFIG.cognito) {
    $('cognito').hidden = false;
    $('cognito').addEventListener('click', cognitoStart);
    if (params.get('code')) { show('sign-in'); cognitoFinish(params); return; }
  }
  if (token) signIn(token); else show('sign-in');
}

init();
