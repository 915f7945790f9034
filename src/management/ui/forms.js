/**
 * The forms of every page: made once when a page opens and never rebuilt by the live update
 * (which only replaces the figures and tables), so what a user is typing survives it. A form
 * reports its outcome in its own result line: RabbitMQ's reason when the API refuses.
 */

import { failureText } from './api.js';
import { el, fill, notify } from './dom.js';

/** A text input with its label; the input's id is `id`. */
export function textField(id, label, attrs = {}) {
  return el('div', { class: 'field' }, el('label', { for: id }, label), el('input', { id, name: id, ...attrs }));
}

function textArea(id, label, attrs = {}) {
  return el('div', { class: 'field' }, el('label', { for: id }, label), el('textarea', { id, name: id, rows: 3, ...attrs }));
}

export function checkbox(id, label, checked = false) {
  return el('div', { class: 'field check' }, el('input', { id, name: id, type: 'checkbox', checked }), el('label', { for: id }, label));
}

/** A select of `[value, text]` pairs (or plain values). */
export function selectField(id, label, options, selected) {
  const select = el('select', { id, name: id });
  setOptions(select, options, selected);
  return el('div', { class: 'field' }, el('label', { for: id }, label), select);
}

/**
 * Replaces a select's options when they changed, keeping what the user picked (the live
 * update calls this with the vhosts, users … it just read).
 */
export function setOptions(select, options, preferred) {
  const pairs = options.map((o) => (Array.isArray(o) ? o : [o, o]));
  const now = Array.from(select.options).map((o) => o.value);
  if (now.length === pairs.length && now.every((v, i) => v === pairs[i][0])) return;
  const keep = select.value || preferred;
  fill(select, pairs.map(([value, text]) => el('option', { value }, text)));
  if (pairs.some(([value]) => value === keep)) select.value = keep;
}

/**
 * A form: `fields` inside, a submit button (id `id-submit`) and a result line (id
 * `id-result`). `action(form)` runs on submit; it resolves to the text to show (or throws
 * an ApiError or Error whose reason is shown).
 */
export function actionForm(id, fields, submitLabel, action) {
  const result = el('p', { id: `${id}-result`, class: 'result', 'aria-live': 'polite' });
  const button = el('button', { id: `${id}-submit`, type: 'submit' }, submitLabel);
  const form = el('form', { id, class: 'action', novalidate: true }, fields, el('div', { class: 'buttons' }, button), result);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      const text = await action(form);
      notify(result, text || 'Done.', 'ok');
    } catch (e) {
      notify(result, failureText(e), 'error');
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

/** The value of a form control by id. */
export function valueOf(form, id) {
  const control = form.querySelector(`#${CSS.escape(id)}`);
  if (!control) return '';
  return control.type === 'checkbox' ? control.checked : control.value;
}

/** Refuses an empty required value with `message` (shown on the form). */
export function required(value, message) {
  if (String(value).trim() === '') throw new Error(message);
  return value;
}

/**
 * RabbitMQ's argument rows: key, value and type (string, number, boolean, list as JSON). A new
 * empty row appears whenever the last one gets a key. `read()` gives the arguments object.
 */
export function argumentsEditor(id, label = 'Arguments') {
  const rows = el('div', { id, class: 'args-editor' });
  const addRow = () => {
    const n = rows.children.length;
    const key = el('input', { class: 'arg-key', placeholder: 'key', 'aria-label': 'argument name', id: `${id}-key-${n}` });
    const value = el('input', { class: 'arg-value', placeholder: 'value', 'aria-label': 'argument value', id: `${id}-value-${n}` });
    const type = el('select', { class: 'arg-type', 'aria-label': 'argument type', id: `${id}-type-${n}` },
      el('option', { value: 'string' }, 'String'), el('option', { value: 'number' }, 'Number'),
      el('option', { value: 'boolean' }, 'Boolean'), el('option', { value: 'json' }, 'List/JSON'));
    key.addEventListener('input', () => {
      if (rows.lastElementChild.contains(key) && key.value !== '') addRow();
    });
    rows.appendChild(el('div', { class: 'arg-row' }, key, ' = ', value, ' ', type));
  };
  addRow();
  const read = () => {
    const out = {};
    for (const row of rows.children) {
      const key = row.querySelector('.arg-key').value.trim();
      if (!key) continue;
      out[key] = typedValue(key, row.querySelector('.arg-value').value, row.querySelector('.arg-type').value);
    }
    return out;
  };
  const node = el('div', { class: 'field' }, el('label', { for: `${id}-key-0` }, label), rows);
  return { node, read };
}

function typedValue(key, text, type) {
  switch (type) {
    case 'number': {
      const n = Number(text);
      if (text.trim() === '' || !Number.isFinite(n)) throw new Error(`${key}: not a number`);
      return n;
    }
    case 'boolean':
      if (!['true', 'false'].includes(text.trim())) throw new Error(`${key}: true or false`);
      return text.trim() === 'true';
    case 'json':
      try {
        return JSON.parse(text);
      } catch {
        throw new Error(`${key}: not valid JSON`);
      }
    default:
      return text;
  }
}

/** Message properties as RabbitMQ's publish form takes them: delivery mode and headers. */
export function publishFields(id) {
  const headers = argumentsEditor(`${id}-headers`, 'Headers');
  const node = [
    selectField(`${id}-delivery-mode`, 'Delivery mode', [['1', '1 - Non-persistent'], ['2', '2 - Persistent']], '1'),
    headers.node,
    textField(`${id}-content-type`, 'content_type', { placeholder: 'e.g. text/plain' }),
    textArea(`${id}-payload`, 'Payload', { rows: 4 }),
  ];
  const read = (form) => {
    const properties = { delivery_mode: Number(valueOf(form, `${id}-delivery-mode`)) };
    const contentType = valueOf(form, `${id}-content-type`).trim();
    if (contentType) properties.content_type = contentType;
    const given = headers.read();
    if (Object.keys(given).length > 0) properties.headers = given;
    return { properties, payload: valueOf(form, `${id}-payload`), payload_encoding: 'string' };
  };
  return { node, read };
}
