// The person's page: register once, then one button pressed and held. No framework, no build.
'use strict';

const CONFIG = window.ALERT_BUTTON_CONFIG || {};
const API = CONFIG.apiBase || '';
const HOLD_MS = 2000;
const POLL_MS = 4000;
const LOCATION_EVERY_MS = 30000;
const LOCATION_MIN_M = 50;
// A state picked by hand is a coarse point: its accuracy says so to the consulate.
const COARSE_ACCURACY_M = 100000;

// Each text once: [Spanish, English], in the order of LANGUAGES.
const LANGUAGES = ['es', 'en'];
const TEXT = {
  title: ['Botón de alerta', 'Alert button'],
  register: ['Registrarse', 'Register'],
  name: ['Su nombre (opcional)', 'Your name (optional)'],
  language: ['Idioma', 'Language'],
  contacts: ['Familiares a avisar', 'Family to notify'],
  add_contact: ['Añadir contacto', 'Add a contact'],
  contact_name: ['Nombre', 'Name'],
  contact_phone: ['Teléfono (+1…)', 'Phone (+1…)'],
  contact_email: ['Correo (opcional)', 'E-mail (optional)'],
  contact_lang: ['Idioma del contacto', "Contact's language"],
  pins: ['PIN (4 a 8 cifras)', 'PIN (4 to 8 digits)'],
  cancel_pin: ['PIN para cancelar', 'Cancel PIN'],
  duress_pin: ['PIN de coacción (parece cancelar, pero avisa)', 'Duress PIN (looks like a cancel, but warns)'],
  register_submit: ['Guardar', 'Save'],
  press_title: ['Pedir ayuda', 'Ask for help'],
  locating: ['Buscando su ubicación…', 'Finding your location…'],
  located: ['Ubicación lista (±{m} m).', 'Location ready (±{m} m).'],
  pick_state: ['No tenemos su ubicación. ¿En qué estado está?', 'We do not have your location. Which state are you in?'],
  state_placeholder: ['Elija un estado', 'Choose a state'],
  state_chosen: ['Se enviará una ubicación aproximada: {s}.', 'An approximate location will be sent: {s}.'],
  hold: ['Mantenga presionado', 'Press and hold'],
  hold_help: ['Mantenga presionado 2 segundos (o la barra espaciadora). Suelte para no enviar.', 'Press and hold for 2 seconds (or the space bar). Let go to not send.'],
  released: ['Soltó el botón: no se envió nada.', 'You let go: nothing was sent.'],
  sending: ['Enviando…', 'Sending…'],
  queued: ['Sin conexión: la alerta se enviará en cuanto vuelva la red.', 'No connection: the alert will be sent as soon as the network is back.'],
  sent: ['Alerta enviada', 'Alert sent'],
  status: ['Estado', 'Status'],
  ciam: ['Línea CIAM 24 horas', 'CIAM 24-hour line'],
  safe_pin: ['Su PIN', 'Your PIN'],
  safe: ['Estoy a salvo', 'I am safe'],
  closed: ['Alerta cancelada', 'Alert cancelled'],
  closed_help: ['Puede pedir ayuda de nuevo cuando lo necesite.', 'You can ask for help again whenever you need.'],
  again: ['Volver', 'Back'],
  km: ['A {d} km', '{d} km away'],
  call: ['Llamar al {p}', 'Call {p}'],
  no_address: ['Dirección no disponible', 'Address not available'],
  s_open: ['Enviada: esperando al consulado', 'Sent: waiting for the consulate'],
  s_acknowledged: ['El consulado la recibió', 'The consulate has it'],
  s_resolved: ['Cerrada por el consulado', 'Closed by the consulate'],
  s_cancelled: ['Cancelada', 'Cancelled'],
  ack: ['El consulado respondió: {n}', 'The consulate answered: {n}'],
  ack_plain: ['El consulado está atendiendo su alerta.', 'The consulate is handling your alert.'],
  need_location: ['Primero necesitamos su ubicación o un estado.', 'We first need your location or a state.'],
  need_contact: ['Cada contacto necesita nombre y teléfono o correo.', 'Each contact needs a name and a phone or e-mail.'],
  need_pins: ['Los dos PIN deben tener de 4 a 8 cifras y ser distintos.', 'Both PINs must be 4 to 8 digits and differ.'],
  wrong_pin: ['PIN incorrecto.', 'Wrong PIN.'],
  checkin: ['Voy a una cita: avisar si no confirmo', "I'm going to an appointment: warn if I don't confirm"],
  checkin_time: ['Si no confirmo antes de esta hora, enviar la alerta', "If I don't confirm by this time, send the alert"],
  checkin_note: ['Nota para el consulado (opcional)', 'Note for the consulate (optional)'],
  checkin_start: ['Empezar', 'Start'],
  checkin_confirm: ['Estoy bien', 'I am fine'],
  checkin_pending: ['Si no confirma antes de las {h}, se enviará su alerta.', 'If you do not confirm by {h}, your alert will be sent.'],
  checkin_done: ['Confirmado. No se enviará nada.', 'Confirmed. Nothing will be sent.'],
  need_time: ['Elija una hora de 1 minuto a 7 días desde ahora.', 'Choose a time from 1 minute to 7 days from now.'],
  escalated: ['El consulado no respondió a tiempo: también avisamos a la línea CIAM y al siguiente consulado.', 'The consulate did not answer in time: we also told the CIAM line and the next consulate.'],
  my_contacts: ['Mis contactos', 'My contacts'],
  contacts_save: ['Guardar contactos', 'Save contacts'],
  contacts_saved: ['Contactos guardados.', 'Contacts saved.'],
  error: ['Algo falló ({e}). Intente de nuevo.', 'Something failed ({e}). Try again.'],
  offline_now: ['Sin conexión.', 'No connection.'],
  registered: ['Registro guardado.', 'Registration saved.'],
  who: ['A quién avisamos', 'Who we told'],
  to_consulate: ['Consulado', 'Consulate'],
  to_family: ['Familia', 'Family'],
  to_escalation: ['Línea CIAM y otro consulado', 'CIAM line and another consulate'],
  d_queued: ['en camino', 'on its way'],
  d_sent: ['enviado', 'sent'],
  d_delivered: ['recibido', 'received'],
  d_failed: ['no llegó', 'did not arrive'],
  d_failed_transient: ['reintentando', 'retrying'],
  d_failed_permanent: ['no se puede enviar', 'cannot be sent'],
  d_opted_out: ['pidió no recibir SMS (STOP)', 'asked for no texts (STOP)'],
};

// Approximate centres: the fallback when the browser gives no location.
const STATES = [
  ['AL', 'Alabama', 32.8, -86.8], ['AK', 'Alaska', 61.4, -150.0], ['AZ', 'Arizona', 34.2, -111.7],
  ['AR', 'Arkansas', 34.9, -92.4], ['CA', 'California', 37.2, -119.5], ['CO', 'Colorado', 39.0, -105.5],
  ['CT', 'Connecticut', 41.6, -72.7], ['DE', 'Delaware', 39.0, -75.5], ['DC', 'District of Columbia', 38.9, -77.03],
  ['FL', 'Florida', 28.6, -82.4], ['GA', 'Georgia', 32.7, -83.4], ['HI', 'Hawaii', 20.8, -156.3],
  ['ID', 'Idaho', 44.4, -114.6], ['IL', 'Illinois', 40.0, -89.2], ['IN', 'Indiana', 39.9, -86.3],
  ['IA', 'Iowa', 42.1, -93.5], ['KS', 'Kansas', 38.5, -98.4], ['KY', 'Kentucky', 37.5, -85.3],
  ['LA', 'Louisiana', 31.1, -92.0], ['ME', 'Maine', 45.4, -69.2], ['MD', 'Maryland', 39.0, -76.8],
  ['MA', 'Massachusetts', 42.3, -71.8], ['MI', 'Michigan', 43.3, -84.5], ['MN', 'Minnesota', 46.3, -94.3],
  ['MS', 'Mississippi', 32.7, -89.7], ['MO', 'Missouri', 38.4, -92.5], ['MT', 'Montana', 47.0, -109.6],
  ['NE', 'Nebraska', 41.5, -99.8], ['NV', 'Nevada', 39.3, -116.6], ['NH', 'New Hampshire', 43.7, -71.6],
  ['NJ', 'New Jersey', 40.2, -74.7], ['NM', 'New Mexico', 34.4, -106.1], ['NY', 'New York', 42.9, -75.5],
  ['NC', 'North Carolina', 35.6, -79.4], ['ND', 'North Dakota', 47.5, -100.5], ['OH', 'Ohio', 40.3, -82.8],
  ['OK', 'Oklahoma', 35.6, -97.5], ['OR', 'Oregon', 43.9, -120.6], ['PA', 'Pennsylvania', 40.9, -77.8],
  ['RI', 'Rhode Island', 41.7, -71.5], ['SC', 'South Carolina', 33.9, -80.9], ['SD', 'South Dakota', 44.4, -100.2],
  ['TN', 'Tennessee', 35.9, -86.4], ['TX', 'Texas', 31.5, -99.3], ['UT', 'Utah', 39.3, -111.7],
  ['VT', 'Vermont', 44.1, -72.7], ['VA', 'Virginia', 37.5, -78.8], ['WA', 'Washington', 47.4, -120.5],
  ['WV', 'West Virginia', 38.6, -80.6], ['WI', 'Wisconsin', 44.6, -89.9], ['WY', 'Wyoming', 43.0, -107.6],
];

const $ = (id) => document.getElementById(id);
const store = {
  get: (k) => { try { return JSON.parse(localStorage.getItem('ab.' + k)); } catch { return null; } },
  set: (k, v) => (v === null || v === undefined ? localStorage.removeItem('ab.' + k) : localStorage.setItem('ab.' + k, JSON.stringify(v))),
};

let lang = store.get('lang') || 'es';
let location_ = null; // {lat, lon, accuracy_m}
let lastSent = null; // {at, lat, lon}: the last location update sent for the open alert
let pollTimer = null;
let sending = false;

function t(key, vars) {
  const texts = TEXT[key];
  let s = (texts && (texts[LANGUAGES.indexOf(lang)] || texts[0])) || key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace('{' + k + '}', v);
  return s;
}

function applyLanguage() {
  document.documentElement.lang = lang;
  document.title = t('title');
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  $('lang').textContent = lang === 'es' ? 'English' : 'Español';
  $('lang').lang = lang === 'es' ? 'en' : 'es';
  for (const el of document.querySelectorAll('[data-i18n-label]')) el.textContent = t(el.dataset.i18nLabel);
  $('state').options[0].textContent = t('state_placeholder');
  const alert = store.get('alert');
  if (alert) renderAlert(alert);
  renderCheckin();
  describeLocation();
}

function notice(text) { $('notice').textContent = text || ''; }

function show(id) {
  for (const s of ['register', 'home', 'alert', 'closed']) $(s).hidden = s !== id;
}

async function api(method, path, body, token) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = 'Bearer ' + token;
  const response = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await response.json(); } catch { /* an empty body */ }
  if (response.status === 401 && token) {
    // The registration is gone (expired or erased): register again.
    store.set('token', null);
    show('register');
  }
  if (!response.ok) {
    const error = new Error((data && data.error && data.error.code) || String(response.status));
    error.status = response.status;
    error.field = data && data.error && data.error.field;
    throw error;
  }
  return data;
}

// --- registration ---------------------------------------------------------------------------

function addContact(where = 'contacts', contact = null) {
  const n = $(where).querySelectorAll('.contact').length;
  if (n >= 15) return;
  const div = document.createElement('div');
  div.className = 'contact';
  const field = (key, type, attrs) => {
    const id = `${where}-${n}-${key}`;
    const label = document.createElement('label');
    label.htmlFor = id;
    label.dataset.i18nLabel = 'contact_' + key;
    label.textContent = t('contact_' + key);
    let input;
    if (type === 'select') {
      input = document.createElement('select');
      for (const v of ['es', 'en']) input.add(new Option(v === 'es' ? 'Español' : 'English', v));
      input.value = (contact && contact.language) || lang;
    } else {
      input = document.createElement('input');
      input.type = type;
      Object.assign(input, attrs || {});
      if (contact && contact[key]) input.value = contact[key];
    }
    input.id = id;
    input.dataset.field = key;
    div.append(label, input);
  };
  field('name', 'text', { maxLength: 100 });
  field('phone', 'tel', { autocomplete: 'off', placeholder: '+13125550100' });
  field('email', 'email', { autocomplete: 'off' });
  field('lang', 'select');
  $(where).append(div);
}

function readContacts(where = 'contacts') {
  const contacts = [];
  for (const div of $(where).querySelectorAll('.contact')) {
    const get = (f) => div.querySelector(`[data-field="${f}"]`).value.trim();
    const [name, phone, email] = [get('name'), get('phone').replace(/[\s().-]/g, ''), get('email')];
    if (!name && !phone && !email) continue;
    if (!name || (!phone && !email)) throw new Error(t('need_contact'));
    contacts.push({ name, phone: phone || null, email: email || null, language: get('lang') });
  }
  return contacts;
}

async function register(event) {
  event.preventDefault();
  notice('');
  let contacts;
  try { contacts = readContacts(); } catch (e) { notice(e.message); return; }
  const cancelPin = $('cancel-pin').value.trim();
  const duressPin = $('duress-pin').value.trim();
  const pinOk = (p) => /^[0-9]{4,8}$/.test(p);
  if (!pinOk(cancelPin) || !pinOk(duressPin) || cancelPin === duressPin) { notice(t('need_pins')); return; }
  $('register-submit').disabled = true;
  try {
    const body = { display_name: $('display-name').value.trim() || null, language: $('language').value, contacts };
    const { token } = await api('POST', '/v1/people', body);
    store.set('token', token);
    await api('PUT', '/v1/people/me/pins', { cancel_pin: cancelPin, duress_pin: duressPin, location: location_ }, token);
    store.set('pins', true);
    store.set('contacts', contacts);
    $('cancel-pin').value = '';
    $('duress-pin').value = '';
    notice(t('registered'));
    start();
  } catch (e) {
    notice(t('error', { e: e.field || e.message }));
  } finally {
    $('register-submit').disabled = false;
  }
}

// Changing the contacts needs the PIN. The duress PIN answers as a success (the server keeps the
// contacts and tells responders), so the page says "saved" either way.
function fillContactsEdit() {
  if (!$('contacts-details').open) return;
  for (const div of $('contacts-edit').querySelectorAll('.contact')) div.remove();
  const saved = store.get('contacts') || [];
  if (saved.length === 0) addContact('contacts-edit');
  for (const contact of saved) addContact('contacts-edit', contact);
}

async function saveContacts(event) {
  event.preventDefault();
  let contacts;
  try { contacts = readContacts('contacts-edit'); } catch (e) { notice(e.message); return; }
  const pin = $('contacts-pin').value.trim();
  try {
    await api('PUT', '/v1/people/me/contacts', { contacts, current_pin: pin || null, location: wire(location_) }, store.get('token'));
    $('contacts-pin').value = '';
    store.set('contacts', contacts);
    $('contacts-details').open = false;
    notice(t('contacts_saved'));
  } catch (e) {
    notice(e.status === 403 ? t('wrong_pin') : t('error', { e: e.field || e.message }));
  }
}

// --- location ---------------------------------------------------------------------------

function describeLocation() {
  if (!$('where')) return;
  if (location_ && location_.state) $('where').textContent = t('state_chosen', { s: location_.state });
  else if (location_) $('where').textContent = t('located', { m: Math.round(location_.accuracy_m || 0) });
  else $('where').textContent = $('fallback').hidden ? t('locating') : t('pick_state');
}

function watchLocation() {
  if (!('geolocation' in navigator)) { useFallback(); return; }
  navigator.geolocation.watchPosition(
    (pos) => {
      location_ = { lat: pos.coords.latitude, lon: pos.coords.longitude, accuracy_m: Math.min(Math.round(pos.coords.accuracy), COARSE_ACCURACY_M) };
      $('fallback').hidden = true;
      describeLocation();
      sendLocationUpdate();
    },
    () => useFallback(),
    { enableHighAccuracy: true, maximumAge: 15000, timeout: 20000 },
  );
}

function useFallback() {
  if (location_ && !location_.state) return;
  $('fallback').hidden = false;
  describeLocation();
}

function pickState() {
  const s = STATES.find(([code]) => code === $('state').value);
  location_ = s ? { lat: s[2], lon: s[3], accuracy_m: COARSE_ACCURACY_M, state: s[1] } : null;
  describeLocation();
}

const wire = (l) => (l ? { lat: l.lat, lon: l.lon, accuracy_m: l.accuracy_m } : null);

function metresBetween(a, b) {
  const r = Math.PI / 180;
  const x = (b.lon - a.lon) * r * Math.cos(((a.lat + b.lat) / 2) * r);
  const y = (b.lat - a.lat) * r;
  return Math.hypot(x, y) * 6371000;
}

// While the alert is open: at most one update every 30 s, and only when the phone moved.
async function sendLocationUpdate() {
  const alert = store.get('alert');
  if (!alert || !location_ || location_.state || !['open', 'acknowledged'].includes(alert.status)) return;
  const now = Date.now();
  if (lastSent && (now - lastSent.at < LOCATION_EVERY_MS || metresBetween(lastSent, location_) < LOCATION_MIN_M)) return;
  lastSent = { at: now, lat: location_.lat, lon: location_.lon };
  try { await api('POST', `/v1/alerts/${alert.alert_id}/locations`, wire(location_), store.get('token')); } catch { /* the next fix retries */ }
}

// --- the button ---------------------------------------------------------------------------

let hold = null;

function startHold(event) {
  if (hold || sending) return;
  if (event) event.preventDefault();
  if (!location_) { notice(t('need_location')); useFallback(); return; }
  notice('');
  const started = performance.now();
  const button = $('press');
  button.classList.add('holding');
  const tick = () => {
    const left = HOLD_MS - (performance.now() - started);
    if (left <= 0) { finishHold(); return; }
    $('countdown').textContent = String(Math.ceil(left / 1000));
    button.style.setProperty('--p', `${Math.round(100 - (left / HOLD_MS) * 100)}%`);
    hold.frame = setTimeout(tick, 100);
  };
  hold = { frame: null };
  tick();
}

function stopHold(aborted) {
  if (!hold) return;
  clearTimeout(hold.frame);
  hold = null;
  $('press').classList.remove('holding');
  $('countdown').textContent = '';
  if (aborted) notice(t('released'));
}

function finishHold() {
  stopHold(false);
  // The id is made once, before the first attempt, and kept until the server has the alert:
  // every retry (a timeout, a reload, the network coming back) sends the same press.
  const id = 'web-' + (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2));
  store.set('pending', { client_alert_id: id, location: wire(location_) });
  sendPending();
}

async function sendPending() {
  const pending = store.get('pending');
  const token = store.get('token');
  if (!pending || !token || sending) return;
  sending = true;
  notice(t('sending'));
  try {
    const alert = await api('POST', '/v1/alerts', pending, token);
    store.set('pending', null);
    $('queued').hidden = true;
    notice('');
    openAlert(alert);
  } catch (e) {
    if (e.status === undefined || e.status >= 500 || e.status === 429) {
      // No answer (offline) or a transient one: keep the press and try again.
      $('queued').hidden = false;
      notice('');
      setTimeout(sendPending, navigator.onLine ? 5000 : 15000);
    } else {
      store.set('pending', null);
      notice(t('error', { e: e.field || e.message }));
    }
  } finally {
    sending = false;
  }
}

// --- after the press ----------------------------------------------------------------------

function openAlert(alert) {
  store.set('alert', alert);
  // The press itself carried this place: only a move from it is worth an update.
  if (!lastSent) lastSent = { at: 0, lat: alert.location.lat, lon: alert.location.lon };
  renderAlert(alert);
  show('alert');
  clearInterval(pollTimer);
  pollTimer = setInterval(refreshAlert, POLL_MS);
}

function renderAlert(alert) {
  if (alert.status === 'cancelled') { closeAlert(); return; }
  $('alert-status').textContent = t('s_' + alert.status);
  const c = alert.consulate;
  if (c) {
    $('consulate-name').textContent = c.name;
    $('consulate-address').textContent = c.address || t('no_address');
    $('consulate-distance').textContent = c.distance_km !== undefined ? t('km', { d: c.distance_km.toFixed(1) }) : '';
    $('consulate-phone').href = 'tel:' + c.phone;
    $('consulate-phone').textContent = t('call', { p: c.phone });
    $('ciam-phone').href = 'tel:' + c.emergency_phone;
    $('ciam-phone').textContent = c.emergency_phone;
  }
  const acks = (alert.history || []).filter((h) => h.event === 'acknowledged');
  const ack = acks[acks.length - 1];
  $('ack').hidden = !ack;
  if (ack) $('ack').textContent = ack.note ? t('ack', { n: ack.note }) : t('ack_plain');
  $('safe-form').hidden = alert.status === 'resolved';
  $('escalated').hidden = !(alert.history || []).some((h) => h.event === 'escalated');
  renderDeliveries(alert.deliveries || []);
}

// Who was told, and whether it arrived: each recipient once, with its first send (the alert
// itself), the consulate first. A text that did not arrive is shown, never hidden.
function renderDeliveries(deliveries) {
  const first = new Map();
  for (const d of deliveries) {
    const key = `${d.audience}|${d.channel}|${d.recipient}`;
    if (!first.has(key)) first.set(key, d);
  }
  const order = { consulate: 0, escalation: 1, family: 2 };
  const rows = [...first.values()].sort((a, b) => (order[a.audience] ?? 3) - (order[b.audience] ?? 3));
  $('deliveries-box').hidden = rows.length === 0;
  $('deliveries').replaceChildren(...rows.map((d) => {
    const li = document.createElement('li');
    li.dataset.status = d.status;
    const who = t('to_' + d.audience) + (d.channel === 'sms' ? ` ${d.recipient}` : '');
    li.textContent = `${who}: ${t('d_' + d.status)}`;
    return li;
  }));
}

async function refreshAlert() {
  const alert = store.get('alert');
  if (!alert) return;
  try {
    const fresh = await api('GET', `/v1/alerts/${alert.alert_id}`, undefined, store.get('token'));
    store.set('alert', fresh);
    renderAlert(fresh);
  } catch { /* offline: the next poll tries again */ }
}

async function cancelAlert(event) {
  event.preventDefault();
  const alert = store.get('alert');
  const pin = $('safe-pin').value.trim();
  if (store.get('pins') && !/^[0-9]{4,8}$/.test(pin)) { notice(t('wrong_pin')); return; }
  try {
    const fresh = await api('POST', `/v1/alerts/${alert.alert_id}/cancel`, { reason: 'safe', pin: pin || null }, store.get('token'));
    $('safe-pin').value = '';
    store.set('alert', fresh);
    renderAlert(fresh);
  } catch (e) {
    notice(e.status === 403 ? t('wrong_pin') : t('error', { e: e.field || e.message }));
  }
}

function closeAlert() {
  clearInterval(pollTimer);
  store.set('alert', null);
  lastSent = null;
  show('closed');
}

// --- check-in: "if I don't confirm by 11:00, raise my alert" -------------------------------

function deadlineFrom(value) {
  const [h, m] = value.split(':').map(Number);
  const at = new Date();
  at.setHours(h, m, 0, 0);
  if (at.getTime() < Date.now() + 60000) at.setDate(at.getDate() + 1); // 11:00 past today: tomorrow's
  return at;
}

function renderCheckin() {
  const c = store.get('checkin');
  const pending = c && c.status === 'pending';
  $('checkin').hidden = Boolean(pending);
  $('checkin-pending').hidden = !pending;
  if (pending) {
    const h = new Date(c.deadline).toLocaleTimeString(lang === 'es' ? 'es-MX' : 'en-US', { hour: '2-digit', minute: '2-digit' });
    $('checkin-deadline').textContent = t('checkin_pending', { h });
  }
}

async function startCheckin(event) {
  event.preventDefault();
  if (!location_) { notice(t('need_location')); useFallback(); return; }
  if (!$('checkin-time').value) { notice(t('need_time')); return; }
  const body = { deadline: deadlineFrom($('checkin-time').value).toISOString(), location: wire(location_), note: $('checkin-note').value.trim() || null };
  try {
    const checkin = await api('POST', '/v1/checkins', body, store.get('token'));
    store.set('checkin', checkin);
    $('checkin-note').value = '';
    notice('');
    renderCheckin();
  } catch (e) {
    notice(e.field === 'deadline' ? t('need_time') : t('error', { e: e.field || e.message }));
  }
}

async function confirmCheckin(event) {
  event.preventDefault();
  const c = store.get('checkin');
  try {
    await api('POST', `/v1/checkins/${c.checkin_id}/confirm`, { pin: $('checkin-pin').value.trim() || null }, store.get('token'));
    $('checkin-pin').value = '';
    store.set('checkin', null);
    notice(t('checkin_done'));
    renderCheckin();
  } catch (e) {
    notice(e.status === 403 ? t('wrong_pin') : t('error', { e: e.field || e.message }));
  }
}

// A missed check-in raised the alert on the server: show it as if the button had been pressed.
async function refreshCheckin() {
  const c = store.get('checkin');
  if (!c) return;
  try {
    const fresh = await api('GET', `/v1/checkins/${c.checkin_id}`, undefined, store.get('token'));
    store.set('checkin', fresh.status === 'pending' ? fresh : null);
    renderCheckin();
    if (fresh.status === 'missed' && fresh.alert_id) {
      openAlert(await api('GET', `/v1/alerts/${fresh.alert_id}`, undefined, store.get('token')));
    }
  } catch { /* offline: the next poll tries again */ }
}

// --- start ---------------------------------------------------------------------------

function start() {
  if (!store.get('token')) { show('register'); return; }
  const alert = store.get('alert');
  if (alert) { openAlert(alert); refreshAlert(); } else show('home');
  if (store.get('pending')) sendPending();
  renderCheckin();
  refreshCheckin();
}

function init() {
  $('state').add(new Option(t('state_placeholder'), ''));
  for (const [code, name] of STATES) $('state').add(new Option(name, code));
  $('state').addEventListener('change', pickState);
  $('lang').addEventListener('click', () => { lang = lang === 'es' ? 'en' : 'es'; store.set('lang', lang); applyLanguage(); });
  $('language').value = lang;
  addContact();
  $('add-contact').addEventListener('click', () => addContact());
  $('add-contact-edit').addEventListener('click', () => addContact('contacts-edit'));
  $('contacts-details').addEventListener('toggle', fillContactsEdit);
  $('contacts-form').addEventListener('submit', saveContacts);
  $('register-form').addEventListener('submit', register);
  const press = $('press');
  press.addEventListener('pointerdown', (e) => { press.setPointerCapture(e.pointerId); startHold(e); });
  press.addEventListener('pointerup', () => stopHold(true));
  press.addEventListener('pointercancel', () => stopHold(true));
  press.addEventListener('contextmenu', (e) => e.preventDefault());
  press.addEventListener('keydown', (e) => { if ((e.key === ' ' || e.key === 'Enter') && !e.repeat) startHold(e); else if (e.key === ' ' || e.key === 'Enter') e.preventDefault(); });
  press.addEventListener('keyup', (e) => { if (e.key === ' ' || e.key === 'Enter') { e.preventDefault(); stopHold(true); } });
  press.addEventListener('blur', () => stopHold(true));
  press.addEventListener('click', (e) => e.preventDefault());
  $('safe-form').addEventListener('submit', cancelAlert);
  $('checkin-form').addEventListener('submit', startCheckin);
  $('checkin-pending').addEventListener('submit', confirmCheckin);
  setInterval(refreshCheckin, POLL_MS * 5);
  $('again').addEventListener('click', () => show('home'));
  window.addEventListener('online', sendPending);
  applyLanguage();
  watchLocation();
  start();
  if ('serviceWorker' in navigator && !CONFIG.noServiceWorker) navigator.serviceWorker.register('/sw.js').catch(() => {});
}

init();
