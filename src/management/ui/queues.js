/**
 * The queues page: every queue the user may see (`/api/queues`) with its flags, state, message
 * counts and rates, a name filter, and the form that declares a queue
 * (`PUT /api/queues/{vhost}/{name}` with durable, auto_delete and arguments).
 */

import { apiPath, get, put } from './api.js';
import { count, el, featureTags, fill, pageLink, rateOf, rateText, section, table } from './dom.js';
import { actionForm, argumentsEditor, checkbox, required, selectField, setOptions, textField, valueOf } from './forms.js';

export function open(main, context) {
  const list = el('div', { id: 'queues-list' });
  const filter = el('input', { id: 'queues-filter', type: 'search', placeholder: 'Filter by name', 'aria-label': 'Filter queues by name' });
  const args = argumentsEditor('add-queue-arguments');
  const form = actionForm('add-queue', [
    selectField('add-queue-vhost', 'Virtual host', ['/'], '/'),
    textField('add-queue-name', 'Name', { required: true, maxlength: 255, autocomplete: 'off' }),
    checkbox('add-queue-durable', 'Durable', true),
    checkbox('add-queue-auto-delete', 'Auto delete'),
    args.node,
  ], 'Add queue', async (f) => {
    const vhost = valueOf(f, 'add-queue-vhost');
    const name = required(valueOf(f, 'add-queue-name'), 'A queue needs a name.');
    const body = {
      durable: valueOf(f, 'add-queue-durable'),
      auto_delete: valueOf(f, 'add-queue-auto-delete'),
      arguments: args.read(),
    };
    const { status } = await put(apiPath('queues', vhost, name), body);
    f.querySelector('#add-queue-name').value = '';
    await context.refresh();
    return status === 201 ? `Queue '${name}' declared.` : `Queue '${name}' already existed: unchanged.`;
  });
  fill(
    main,
    el('h1', {}, 'Queues'),
    section('All queues', { id: 'queues-section' }, el('div', { class: 'toolbar' }, filter), list),
    section('Add a new queue', { id: 'add-queue-section' }, form),
  );

  let last = [];
  const render = () => {
    const wanted = filter.value.trim().toLowerCase();
    const shown = wanted ? last.filter((q) => q.name.toLowerCase().includes(wanted)) : last;
    fill(list, queueTable(shown));
  };
  filter.addEventListener('input', render);

  const refresh = async () => {
    const [queues, vhosts] = await Promise.all([get('/api/queues'), get('/api/vhosts')]);
    last = queues;
    render();
    setOptions(form.querySelector('#add-queue-vhost'), vhosts.map((v) => v.name), '/');
  };
  return { refresh };
}

function queueTable(queues) {
  return table([
    { title: 'Virtual host', cell: (q) => q.vhost },
    { title: 'Name', cell: (q) => pageLink(q.name, 'queues', q.vhost, q.name), key: 'name' },
    { title: 'Type', cell: (q) => q.type || 'classic' },
    { title: 'Features', cell: (q) => featureTags(q) },
    { title: 'State', cell: (q) => el('span', { class: `state ${q.state}` }, q.state || '') },
    { title: 'Ready', cell: (q) => count(q.messages_ready), num: true, key: 'messages_ready' },
    { title: 'Unacked', cell: (q) => count(q.messages_unacknowledged), num: true, key: 'messages_unacknowledged' },
    { title: 'Total', cell: (q) => count(q.messages), num: true, key: 'messages' },
    { title: 'Incoming', cell: (q) => rateText(rateOf(q.message_stats, 'publish')), num: true, key: 'incoming' },
    { title: 'Deliver / get', cell: (q) => rateText(rateOf(q.message_stats, 'deliver_get')), num: true, key: 'deliver_get' },
    { title: 'Ack', cell: (q) => rateText(rateOf(q.message_stats, 'ack')), num: true, key: 'ack' },
  ], queues, { id: 'queues-table', empty: 'No queues.' });
}
