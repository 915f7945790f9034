/**
 * The exchanges pages: the list (`/api/exchanges`) with the form that declares one
 * (`PUT /api/exchanges/{vhost}/{name}`), and one exchange (`#/exchanges/{vhost}/{name}`, the
 * default exchange as `amq.default`, as in API paths): details, its bindings both ways (bind
 * and unbind), publishing through it, delete.
 */

import { ApiError, apiPath, get, post, put, remove } from './api.js';
import {
  argumentList, el, facts, featureTags, fill, idPart, pageLink, rateOf, rateText, section, table, twoStepButton,
} from './dom.js';
import {
  actionForm, argumentsEditor, checkbox, required, selectField, setOptions, textField, valueOf,
} from './forms.js';
import { publishForm } from './messages.js';

const TYPES = ['direct', 'fanout', 'headers', 'topic'];

/** The name an exchange has in paths: `amq.default` for the default exchange (""). */
const pathName = (name) => (name === '' ? 'amq.default' : name);
const shownName = (name) => (name === '' || name === 'amq.default' ? '(AMQP default)' : name);

export function openList(main, context) {
  const list = el('div', { id: 'exchanges-list' });
  const filter = el('input', { id: 'exchanges-filter', type: 'search', placeholder: 'Filter by name', 'aria-label': 'Filter exchanges by name' });
  const args = argumentsEditor('add-exchange-arguments');
  const form = actionForm('add-exchange', [
    selectField('add-exchange-vhost', 'Virtual host', ['/'], '/'),
    textField('add-exchange-name', 'Name', { required: true, maxlength: 255, autocomplete: 'off' }),
    selectField('add-exchange-type', 'Type', TYPES, 'direct'),
    checkbox('add-exchange-durable', 'Durable', true),
    checkbox('add-exchange-auto-delete', 'Auto delete'),
    checkbox('add-exchange-internal', 'Internal'),
    args.node,
  ], 'Add exchange', async (f) => {
    const vhost = valueOf(f, 'add-exchange-vhost');
    const name = required(valueOf(f, 'add-exchange-name'), 'An exchange needs a name.');
    const { status } = await put(apiPath('exchanges', vhost, name), {
      type: valueOf(f, 'add-exchange-type'),
      durable: valueOf(f, 'add-exchange-durable'),
      auto_delete: valueOf(f, 'add-exchange-auto-delete'),
      internal: valueOf(f, 'add-exchange-internal'),
      arguments: args.read(),
    });
    f.querySelector('#add-exchange-name').value = '';
    await context.refresh();
    return status === 201 ? `Exchange '${name}' declared.` : `Exchange '${name}' already existed: unchanged.`;
  });
  fill(
    main,
    el('h1', {}, 'Exchanges'),
    section('All exchanges', { id: 'exchanges-section' }, el('div', { class: 'toolbar' }, filter), list),
    section('Add a new exchange', { id: 'add-exchange-section' }, form),
  );

  let last = [];
  const render = () => {
    const wanted = filter.value.trim().toLowerCase();
    const shown = wanted ? last.filter((x) => x.name.toLowerCase().includes(wanted)) : last;
    fill(list, exchangeTable(shown));
  };
  filter.addEventListener('input', render);
  const refresh = async () => {
    const [exchanges, vhosts] = await Promise.all([get('/api/exchanges'), get('/api/vhosts')]);
    last = exchanges;
    render();
    setOptions(form.querySelector('#add-exchange-vhost'), vhosts.map((v) => v.name), '/');
  };
  return { refresh };
}

function exchangeTable(exchanges) {
  return table([
    { title: 'Virtual host', cell: (x) => x.vhost },
    { title: 'Name', cell: (x) => pageLink(shownName(x.name), 'exchanges', x.vhost, pathName(x.name)), key: 'name' },
    { title: 'Type', cell: (x) => x.type },
    { title: 'Features', cell: (x) => featureTags(x) },
    { title: 'Message rate in', cell: (x) => rateText(rateOf(x.message_stats, 'publish_in')), num: true, key: 'publish_in' },
    { title: 'Message rate out', cell: (x) => rateText(rateOf(x.message_stats, 'publish_out')), num: true, key: 'publish_out' },
  ], exchanges, { id: 'exchanges-table', empty: 'No exchanges.' });
}

export function openOne(main, context, vhost, name) {
  const details = el('div', { id: 'exchange-details' });
  const outgoing = el('div', { id: 'exchange-bindings-source' });
  const incoming = el('div', { id: 'exchange-bindings-destination' });
  const exchangePath = apiPath('exchanges', vhost, name);
  const isDefault = name === 'amq.default';

  const bindArgs = argumentsEditor('exchange-bind-arguments');
  const bind = actionForm('exchange-bind', [
    selectField('exchange-bind-kind', 'To', [['q', 'Queue'], ['e', 'Exchange']], 'q'),
    textField('exchange-bind-destination', 'Name', { required: true, autocomplete: 'off' }),
    textField('exchange-bind-routing-key', 'Routing key', { autocomplete: 'off' }),
    bindArgs.node,
  ], 'Bind', async (f) => {
    const destination = required(valueOf(f, 'exchange-bind-destination'), 'Name the queue or exchange to bind to.');
    await post(apiPath('bindings', vhost, 'e', name, valueOf(f, 'exchange-bind-kind'), destination), {
      routing_key: valueOf(f, 'exchange-bind-routing-key'),
      arguments: bindArgs.read(),
    });
    await context.refresh();
    return `Bound to '${destination}'.`;
  });
  const del = twoStepButton('exchange-delete', 'Delete exchange', async () => {
    await remove(exchangePath);
    context.navigate('#/exchanges');
  });

  fill(
    main,
    el('h1', {}, 'Exchange ', el('span', { id: 'exchange-name', class: 'object-name' }, shownName(name)),
      el('span', { class: 'muted' }, ` in virtual host ${vhost}`)),
    el('p', {}, pageLink('« All exchanges', 'exchanges')),
    section('Details', { id: 'exchange-details-section' }, details),
    section('Bindings from this exchange', { id: 'exchange-source-section' }, outgoing,
      isDefault ? null : el('h3', {}, 'Add binding from this exchange'), isDefault ? null : bind),
    section('Bindings to this exchange', { id: 'exchange-destination-section' }, incoming),
    section('Publish message', { id: 'exchange-publish-section' }, publishForm('exchange-publish', vhost, name)),
    isDefault ? null : section('Delete this exchange', { id: 'exchange-danger-section' }, del),
  );

  const refresh = async () => {
    let exchange;
    let source;
    let destination;
    try {
      [exchange, source, destination] = await Promise.all([
        get(exchangePath),
        get(`${exchangePath}/bindings/source`),
        get(`${exchangePath}/bindings/destination`),
      ]);
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 404) throw e;
      fill(details, el('p', { class: 'error', id: 'exchange-missing' }, `No exchange '${name}' in virtual host '${vhost}'.`));
      fill(outgoing);
      fill(incoming);
      return;
    }
    fill(details, facts([
      ['Type', exchange.type, 'type'],
      ['Features', featureTags(exchange), 'features'],
      ['Arguments', argumentList(exchange.arguments), 'arguments'],
      ['Message rate in', rateText(rateOf(exchange.message_stats, 'publish_in')), 'publish_in_rate'],
      ['Message rate out', rateText(rateOf(exchange.message_stats, 'publish_out')), 'publish_out_rate'],
    ]));
    fill(outgoing, bindingTable(source, 'destination', vhost, context, 'exchange-source-table'));
    fill(incoming, bindingTable(destination, 'source', vhost, context, 'exchange-destination-table'));
  };
  return { refresh };
}

/** Bindings listed by their other end (`other`: `destination` or `source`), with unbind. */
function bindingTable(links, other, vhost, context, id) {
  const link = (b) => {
    if (other === 'source') return b.source === '' ? '(AMQP default)' : pageLink(b.source, 'exchanges', vhost, b.source);
    const page = b.destination_type === 'queue' ? 'queues' : 'exchanges';
    return pageLink(b.destination, page, vhost, b.destination);
  };
  return table([
    { title: other === 'source' ? 'From' : 'To', cell: link },
    { title: 'Kind', cell: (b) => (other === 'source' ? 'exchange' : b.destination_type) },
    { title: 'Routing key', cell: (b) => b.routing_key },
    { title: 'Arguments', cell: (b) => argumentList(b.arguments) },
    {
      title: '',
      cell: (b) => (b.source === '' ? '' : twoStepButton(
        `unbind-${idPart(b.source)}-${idPart(b.destination)}-${idPart(b.properties_key)}`, 'Unbind', async () => {
          const kind = b.destination_type === 'queue' ? 'q' : 'e';
          await remove(apiPath('bindings', vhost, 'e', b.source, kind, b.destination, b.properties_key));
          await context.refresh();
        },
      )),
    },
  ], links, { id, empty: 'No bindings.', rowKey: (b) => ({ source: b.source, destination: b.destination }) });
}
