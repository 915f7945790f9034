/**
 * Messages from the page: the publish form (`POST /api/exchanges/{vhost}/{exchange}/publish`,
 * on a queue's page through the default exchange with the queue's name as routing key) and the
 * get form (`POST /api/queues/{vhost}/{name}/get` with ackmode, encoding and count), whose
 * messages stay on screen until the next get, whatever the live update does.
 */

import { apiPath, post } from './api.js';
import { argumentList, count, el, facts, fill } from './dom.js';
import { actionForm, publishFields, selectField, textField, valueOf } from './forms.js';

/** RabbitMQ's four ways a got message leaves (or stays in) the queue, in its UI's words. */
const ACK_MODES = [
  ['ack_requeue_true', 'Nack message requeue true'],
  ['ack_requeue_false', 'Automatic ack'],
  ['reject_requeue_true', 'Reject requeue true'],
  ['reject_requeue_false', 'Reject requeue false'],
];

/**
 * The publish form (id `id`) for exchange `exchange` (its path name: `amq.default` for the
 * default exchange). With `routingKey` given the key is fixed and not asked for.
 */
export function publishForm(id, vhost, exchange, { routingKey, afterPublish } = {}) {
  const message = publishFields(id);
  const fields = [];
  if (routingKey === undefined) {
    fields.push(textField(`${id}-routing-key`, 'Routing key', { autocomplete: 'off' }));
  } else {
    fields.push(el('p', { class: 'muted' }, 'Published through the default exchange with the queue\'s name as routing key.'));
  }
  fields.push(message.node);
  return actionForm(id, fields, 'Publish message', async (form) => {
    const body = {
      routing_key: routingKey ?? valueOf(form, `${id}-routing-key`),
      ...message.read(form),
    };
    const answer = await post(apiPath('exchanges', vhost, exchange, 'publish'), body);
    if (afterPublish) await afterPublish();
    return answer?.routed === false ? 'Message published, but not routed.' : 'Message published.';
  });
}

/** The get form (id `id`) for queue `name`; the messages it got go to `#id-messages`. */
export function getForm(id, vhost, name, { afterGet } = {}) {
  const shown = el('div', { id: `${id}-messages`, class: 'messages' });
  const form = actionForm(id, [
    selectField(`${id}-ackmode`, 'Ack mode', ACK_MODES, 'ack_requeue_true'),
    selectField(`${id}-encoding`, 'Encoding', [['auto', 'Auto string / base64'], ['base64', 'base64']], 'auto'),
    textField(`${id}-count`, 'Messages', { type: 'number', min: 1, value: '1' }),
  ], 'Get message(s)', async (f) => {
    const wanted = Number(valueOf(f, `${id}-count`) || 1);
    if (!Number.isInteger(wanted) || wanted < 1) throw new Error('Messages: a whole number, 1 or more.');
    const got = await post(apiPath('queues', vhost, name, 'get'), {
      count: wanted,
      ackmode: valueOf(f, `${id}-ackmode`),
      encoding: valueOf(f, `${id}-encoding`),
      truncate: 50000,
    });
    fill(shown, got.length === 0 ? el('p', { class: 'muted', id: `${id}-empty` }, 'Queue is empty.') : got.map(messageView));
    if (afterGet) await afterGet();
    return got.length === 0 ? 'Queue is empty.' : `Got ${got.length} message${got.length === 1 ? '' : 's'}.`;
  });
  return el('div', {}, form, shown);
}

function messageView(m, index) {
  return el('div', { class: 'message', dataset: { message: index + 1 } },
    el('h3', {}, `Message ${index + 1}`),
    el('p', { class: 'muted' }, `The server reported ${count(m.message_count)} message${m.message_count === 1 ? '' : 's'} remaining.`),
    facts([
      ['Exchange', m.exchange === '' ? '(AMQP default)' : m.exchange, 'exchange'],
      ['Routing key', m.routing_key, 'routing_key'],
      ['Redelivered', m.redelivered ? 'yes' : 'no', 'redelivered'],
      ['Properties', Array.isArray(m.properties) ? argumentList({}) : argumentList(m.properties), 'properties'],
      ['Payload', `${count(m.payload_bytes)} bytes, encoding: ${m.payload_encoding}`, 'payload_bytes'],
    ]),
    el('pre', { class: 'payload', dataset: { payload: index + 1 } }, m.payload));
}
