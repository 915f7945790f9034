/**
 * One queue's page (`#/queues/{vhost}/{name}`): its details and counts
 * (`/api/queues/{vhost}/{name}`), its bindings (with bind and unbind), publishing to it and
 * getting from it (messages.js), purge (`DELETE …/contents`) and delete.
 */

import { ApiError, apiPath, failureText, get, post, remove } from './api.js';
import {
  argumentList, count, el, facts, featureTags, fill, idPart, notify, pageLink, rateOf, rateText, section, table,
  twoStepButton,
} from './dom.js';
import { actionForm, argumentsEditor, textField, valueOf } from './forms.js';
import { getForm, publishForm } from './messages.js';

export function open(main, context, vhost, name) {
  const details = el('div', { id: 'queue-details' });
  const bindings = el('div', { id: 'queue-bindings' });
  const actionResult = el('p', { id: 'queue-action-result', class: 'result', 'aria-live': 'polite' });
  const queuePath = apiPath('queues', vhost, name);

  const purge = twoStepButton('queue-purge', 'Purge messages', async () => {
    try {
      await remove(`${queuePath}/contents`);
      notify(actionResult, 'Queue purged.');
      await context.refresh();
    } catch (e) {
      notify(actionResult, failureText(e), 'error');
    }
  });
  const del = twoStepButton('queue-delete', 'Delete queue', async () => {
    try {
      await remove(queuePath);
      context.navigate('#/queues');
    } catch (e) {
      notify(actionResult, failureText(e), 'error');
    }
  });

  const bindArgs = argumentsEditor('queue-bind-arguments');
  const bind = actionForm('queue-bind', [
    textField('queue-bind-exchange', 'From exchange', { required: true, autocomplete: 'off' }),
    textField('queue-bind-routing-key', 'Routing key', { autocomplete: 'off' }),
    bindArgs.node,
  ], 'Bind', async (f) => {
    const exchange = valueOf(f, 'queue-bind-exchange');
    if (!exchange) throw new Error('Name the exchange to bind from.');
    await post(apiPath('bindings', vhost, 'e', exchange, 'q', name), {
      routing_key: valueOf(f, 'queue-bind-routing-key'),
      arguments: bindArgs.read(),
    });
    await context.refresh();
    return `Bound from '${exchange}'.`;
  });

  fill(
    main,
    el('h1', {}, 'Queue ', el('span', { id: 'queue-name', class: 'object-name' }, name),
      el('span', { class: 'muted' }, ` in virtual host ${vhost}`)),
    el('p', {}, pageLink('« All queues', 'queues')),
    section('Details', { id: 'queue-details-section' }, details),
    el('div', { class: 'pair' },
      section('Publish message', { id: 'queue-publish-section' },
        publishForm('queue-publish', vhost, 'amq.default', { routingKey: name, afterPublish: context.refresh })),
      section('Get messages', { id: 'queue-get-section' },
        getForm('queue-get', vhost, name, { afterGet: context.refresh }))),
    section('Bindings', { id: 'queue-bindings-section' }, bindings, el('h3', {}, 'Add binding to this queue'), bind),
    section('Purge and delete', { id: 'queue-danger-section' }, el('div', { class: 'buttons' }, purge, ' ', del), actionResult),
  );

  const refresh = async () => {
    let queue;
    let links;
    try {
      [queue, links] = await Promise.all([get(queuePath), get(`${queuePath}/bindings`)]);
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 404) throw e;
      fill(details, el('p', { class: 'error', id: 'queue-missing' }, `No queue '${name}' in virtual host '${vhost}'.`));
      fill(bindings);
      return;
    }
    fill(details, queueFacts(queue));
    fill(bindings, bindingTable(links, vhost, name, context));
  };
  return { refresh };
}

function queueFacts(q) {
  const stats = q.message_stats;
  return el('div', { class: 'columns' },
    facts([
      ['Type', q.type || 'classic', 'type'],
      ['Features', featureTags(q), 'features'],
      ['State', q.state || '', 'state'],
      ['Consumers', count(q.consumers), 'consumers'],
      ['Policy', q.policy || '—', 'policy'],
      ['Node', q.node || '', 'node'],
      ['Arguments', argumentList(q.arguments), 'arguments'],
    ]),
    facts([
      ['Ready', count(q.messages_ready), 'messages_ready'],
      ['Unacked', count(q.messages_unacknowledged), 'messages_unacknowledged'],
      ['Total', count(q.messages), 'messages'],
      ['Incoming', rateText(rateOf(stats, 'publish')), 'publish_rate'],
      ['Deliver / get', rateText(rateOf(stats, 'deliver_get')), 'deliver_get_rate'],
      ['Ack', rateText(rateOf(stats, 'ack')), 'ack_rate'],
    ], { id: 'queue-counts' }));
}

function bindingTable(links, vhost, queue, context) {
  return table([
    { title: 'From', cell: (b) => (b.source === '' ? '(Default exchange binding)' : pageLink(b.source, 'exchanges', vhost, b.source)) },
    { title: 'Routing key', cell: (b) => b.routing_key },
    { title: 'Arguments', cell: (b) => argumentList(b.arguments) },
    {
      title: '',
      cell: (b) => (b.source === '' ? '' : twoStepButton(`unbind-${idPart(b.source)}-${idPart(b.properties_key)}`, 'Unbind', async () => {
        await remove(apiPath('bindings', vhost, 'e', b.source, 'q', queue, b.properties_key));
        await context.refresh();
      })),
    },
  ], links, { id: 'queue-bindings-table', empty: 'No bindings.', rowKey: (b) => ({ source: b.source, routingKey: b.routing_key }) });
}
