/**
 * Building the page safely: elements are made with createElement and text goes in as text
 * nodes, never as HTML, because names (queues, exchanges, users, connections) are whatever a
 * client chose. Also the figures' formats (counts, rates, bytes, durations) and the tables,
 * sections and two-step buttons every page uses.
 */

import { failureText } from './api.js';

/**
 * `el('td', {class: 'num', dataset: {rate: 'publish'}}, 'text', child)`. Attributes are set
 * with setAttribute (values are never parsed as markup); `on*` keys add event listeners;
 * strings and numbers among the children become text nodes; null, undefined and false are
 * skipped; arrays are flattened.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'dataset') {
      for (const [k, v] of Object.entries(value)) node.dataset[k] = String(v);
    } else if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2), value);
    } else if (key === 'value' || key === 'checked' || key === 'selected') {
      node[key] = value;
    } else {
      node.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else if (child instanceof Node) node.appendChild(child);
    else node.appendChild(document.createTextNode(String(child)));
  }
}

/** Replaces what `node` holds with `children` (same rules as `el`). */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** A `#/…` link to a page; every segment URL-encoded. */
export function pageLink(text, ...segments) {
  return el('a', { href: '#/' + segments.map((s) => encodeURIComponent(s)).join('/') }, text);
}

/** A count with thousands separators (absent: 0). */
export function count(n) {
  return Number(n || 0).toLocaleString('en-US');
}

/** `x_details.rate` of an object, as RabbitMQ reports rates; absent is 0.0. */
export function rateOf(object, key) {
  const rate = object?.[`${key}_details`]?.rate;
  return typeof rate === 'number' && Number.isFinite(rate) ? rate : 0;
}

/** A rate as RabbitMQ's UI shows it: one decimal, per second. */
export function rateText(rate) {
  return `${Number(rate || 0).toFixed(1)}/s`;
}

export function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = Number(n || 0);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

export function duration(ms) {
  let s = Math.floor(Number(ms || 0) / 1000);
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  return `${m}m ${s}s`;
}

/** An object's `arguments` (or any table) as `key: value` lines. */
export function argumentList(table) {
  const entries = Object.entries(table || {});
  if (entries.length === 0) return el('span', { class: 'muted' }, 'none');
  return el('dl', { class: 'args' },
    entries.map(([k, v]) => [el('dt', {}, k), el('dd', {}, typeof v === 'string' ? v : JSON.stringify(v))]));
}

/** Short tags for a queue's or exchange's flags, as RabbitMQ's lists show them. */
export function featureTags(object) {
  const tags = [];
  if (object.durable) tags.push(['D', 'durable']);
  if (object.auto_delete) tags.push(['AD', 'auto-delete']);
  if (object.exclusive) tags.push(['Excl', 'exclusive']);
  if (object.internal) tags.push(['I', 'internal']);
  for (const key of Object.keys(object.arguments || {})) tags.push([abbreviation(key), key]);
  if (object.policy) tags.push([`Pol: ${object.policy}`, 'policy']);
  return el('span', { class: 'features' },
    tags.map(([text, title]) => el('abbr', { class: 'tag', title }, text)));
}

function abbreviation(argument) {
  const known = {
    'x-message-ttl': 'TTL', 'x-expires': 'Exp', 'x-max-length': 'Lim', 'x-max-length-bytes': 'Lim B',
    'x-overflow': 'Ovfl', 'x-dead-letter-exchange': 'DLX', 'x-dead-letter-routing-key': 'DLK',
    'x-max-priority': 'Pri', 'x-single-active-consumer': 'SAC', 'x-queue-type': 'Type',
    'alternate-exchange': 'AE',
  };
  return known[argument] || argument;
}

/**
 * A table: `columns` are `{title, cell(row), num?, key?}`; each row gets `data-name` (and
 * `data-vhost` when the row has one) so a test or a user script can find it.
 */
export function table(columns, rows, { id, empty = 'Nothing to show.', rowKey } = {}) {
  if (rows.length === 0) return el('p', { id, class: 'muted empty' }, empty);
  const head = el('tr', {}, columns.map((c) => el('th', { class: c.num ? 'num' : null }, c.title)));
  const body = rows.map((row) => {
    const dataset = rowKey ? rowKey(row) : { name: row.name ?? '', ...(row.vhost !== undefined ? { vhost: row.vhost } : {}) };
    return el('tr', { dataset },
      columns.map((c) => el('td', { class: c.num ? 'num' : null, dataset: c.key ? { col: c.key } : undefined }, c.cell(row))));
  });
  return el('table', { id, class: 'list' }, el('thead', {}, head), el('tbody', {}, body));
}

/** A titled section holding `children`. */
export function section(title, attrs, ...children) {
  return el('section', { class: 'panel', ...attrs }, el('h2', {}, title), ...children);
}

/** Label/value pairs (`[[label, value, key?], …]`), each value with `data-field=key`. */
export function facts(pairs, attrs = {}) {
  return el('dl', { class: 'facts', ...attrs },
    pairs.map(([label, value, key]) => [el('dt', {}, label), el('dd', { dataset: key ? { field: key } : undefined }, value)]));
}

/** A short message in `region`: kind `ok` or `error`. */
export function notify(region, text, kind = 'ok') {
  fill(region, el('span', { class: kind, role: kind === 'error' ? 'alert' : 'status' }, text));
  region.dataset.kind = kind;
}

/**
 * Which two-step buttons are waiting for their second click, by id. Kept here rather than in
 * the button so that a button re-rendered by the live update keeps asking.
 */
const armed = new Set();

/** Forgets every half-done two-step action (a new page starts with none). */
export function disarmAll() {
  armed.clear();
}

/**
 * A destructive action in two clicks: `label` (id `id`) turns into "Are you sure?" with a
 * confirm button (id `id-confirm`) and a cancel button (id `id-cancel`). If `action` fails,
 * its reason shows beside the button (id `id-error`).
 */
export function twoStepButton(id, label, action) {
  const holder = el('span', { class: 'two-step' });
  const run = async () => {
    try {
      await action();
    } catch (e) {
      holder.appendChild(el('span', { class: 'error', id: `${id}-error`, role: 'alert' }, ` ${failureText(e)}`));
    }
  };
  const render = () => {
    if (!armed.has(id)) {
      fill(holder, el('button', { id, type: 'button', class: 'danger', onclick: () => { armed.add(id); render(); } }, label));
      return;
    }
    fill(holder,
      el('span', { class: 'muted' }, 'Are you sure? '),
      el('button', {
        id: `${id}-confirm`, type: 'button', class: 'danger',
        onclick: () => { armed.delete(id); render(); run(); },
      }, label),
      ' ',
      el('button', { id: `${id}-cancel`, type: 'button', onclick: () => { armed.delete(id); render(); } }, 'Cancel'));
  };
  render();
  return holder;
}

/** A string safe to use inside an element id (names may hold anything). */
export function idPart(text) {
  return Array.from(new TextEncoder().encode(String(text)))
    .map((b) => ((b >= 48 && b <= 57) || (b >= 97 && b <= 122) || (b >= 65 && b <= 90) ? String.fromCharCode(b) : `_${b.toString(16)}`))
    .join('');
}
