/**
 * The overview page: object and message totals (`/api/overview`), message rates (every
 * `message_stats.*_details.rate`; a rate the broker does not report shows as 0.0/s), the node
 * (`/api/nodes`: memory, disk, descriptors, uptime, its alarm flags) and the cluster's alarms
 * (`/api/health/checks/alarms`: 200 ok, 503 with the alarms in effect).
 */

import { ApiError, call, failureText, get } from './api.js';
import { bytes, count, duration, el, facts, fill, rateOf, rateText, section, table } from './dom.js';

const OBJECT_TOTALS = [
  ['connections', 'Connections'],
  ['channels', 'Channels'],
  ['exchanges', 'Exchanges'],
  ['queues', 'Queues'],
  ['consumers', 'Consumers'],
];

const QUEUE_TOTALS = [
  ['messages_ready', 'Ready'],
  ['messages_unacknowledged', 'Unacked'],
  ['messages', 'Total'],
];

/** The rates always shown (RabbitMQ's overview chart); others appear when reported. */
const MESSAGE_RATES = [
  ['publish', 'Publish'],
  ['confirm', 'Publisher confirm'],
  ['deliver_get', 'Deliver / get'],
  ['ack', 'Consumer ack'],
  ['redeliver', 'Redelivered'],
  ['get_empty', 'Get (empty)'],
  ['return_unroutable', 'Unroutable (return)'],
  ['drop_unroutable', 'Unroutable (drop)'],
];

export function open(main, _context) {
  const totals = el('div', { id: 'totals', class: 'tiles' });
  const queued = el('div', { id: 'queue-totals', class: 'tiles' });
  const rates = el('div', { id: 'message-rates' });
  const alarms = el('div', { id: 'alarms', dataset: { status: 'unknown' } });
  const node = el('div', { id: 'node-info' });
  const listeners = el('div', { id: 'listeners' });
  fill(
    main,
    el('h1', {}, 'Overview'),
    section('Totals', { id: 'totals-section' }, totals, el('h3', {}, 'Queued messages'), queued),
    section('Message rates', { id: 'rates-section' }, rates),
    el('div', { class: 'pair' },
      section('Node', { id: 'node-section' }, node),
      el('div', {},
        section('Alarms', { id: 'alarms-section' }, alarms),
        section('Listeners', { id: 'listeners-section' }, listeners))),
  );

  const refresh = async () => {
    const [summary, nodes, health] = await Promise.all([
      get('/api/overview'),
      get('/api/nodes').catch(keepFailure),
      call('GET', '/api/health/checks/alarms', { accept: [503] }).catch(keepFailure),
    ]);
    fill(totals, OBJECT_TOTALS.map(([key, label]) => tile(key, label, summary.object_totals?.[key])));
    fill(queued, QUEUE_TOTALS.map(([key, label]) => tile(key, label, summary.queue_totals?.[key])));
    fill(rates, rateTable(summary.message_stats || {}));
    fill(alarms, ...alarmView(alarms, health, nodes));
    fill(node, nodeView(summary, nodes));
    fill(listeners, table([
      { title: 'Protocol', cell: (l) => l.protocol },
      { title: 'Bound to', cell: (l) => l.ip_address },
      { title: 'Port', cell: (l) => String(l.port), num: true },
    ], summary.listeners || [], { id: 'listeners-table', rowKey: (l) => ({ protocol: l.protocol }) }));
  };
  return { refresh };
}

/** A section-level failure to show in place; a refused login still ends the session. */
function keepFailure(e) {
  if (e instanceof ApiError && e.loginFailed) throw e;
  return { failure: failureText(e) };
}

function tile(key, label, value) {
  return el('div', { class: 'tile', id: `total-${key}`, dataset: { total: key } },
    el('span', { class: 'figure' }, count(value)), el('span', { class: 'label' }, label));
}

function rateTable(stats) {
  const shown = new Map(MESSAGE_RATES);
  for (const key of Object.keys(stats)) {
    const name = key.endsWith('_details') ? key.slice(0, -'_details'.length) : null;
    if (name && !shown.has(name)) shown.set(name, name.replaceAll('_', ' '));
  }
  const rows = Array.from(shown, ([key, label]) => ({ key, label, rate: rateOf(stats, key), total: stats[key] }));
  return table([
    { title: 'Rate', cell: (r) => r.label },
    { title: 'Per second', cell: (r) => el('span', { dataset: { rate: r.key } }, rateText(r.rate)), num: true },
    { title: 'Total', cell: (r) => (typeof r.total === 'number' ? count(r.total) : '—'), num: true },
  ], rows, { id: 'message-rates-table', rowKey: (r) => ({ name: r.key }) });
}

/** The alarm check's answer; `holder` gets `data-status` ok, failed or unknown. */
function alarmView(holder, health, nodes) {
  const parts = [];
  if (health.failure) {
    holder.dataset.status = 'unknown';
    parts.push(el('p', { class: 'error' }, `Alarm check failed: ${health.failure}`));
  } else if (health.status === 200) {
    holder.dataset.status = 'ok';
    parts.push(el('p', { class: 'ok', id: 'alarms-status' }, 'No alarms in effect.'));
  } else {
    holder.dataset.status = 'failed';
    const list = (health.body?.alarms || []).map((a) => el('li', {}, `${a.resource} alarm on ${a.node}`));
    parts.push(el('p', { class: 'error', id: 'alarms-status' }, health.body?.reason || 'Resource alarm in effect.'), el('ul', {}, list));
  }
  const node = Array.isArray(nodes) ? nodes[0] : null;
  if (node) {
    parts.push(facts([
      ['Memory alarm', flag(node.mem_alarm), 'mem_alarm'],
      ['Disk alarm', flag(node.disk_free_alarm), 'disk_free_alarm'],
    ]));
  }
  return parts;
}

function flag(on) {
  return el('span', { class: on ? 'error' : 'ok' }, on ? 'in effect' : 'no');
}

function nodeView(summary, nodes) {
  const pairs = [
    ['Product', `${summary.product_name || 'RabbitMQ'} ${summary.product_version || ''}`, 'product'],
    ['Management version', summary.management_version || '', 'management_version'],
    ['Runtime', summary.erlang_full_version || summary.erlang_version || '', 'runtime'],
    ['Cluster', summary.cluster_name || '', 'cluster_name'],
  ];
  if (nodes.failure) {
    return el('div', {}, facts(pairs), el('p', { class: 'muted', id: 'node-unavailable' }, `Node details: ${nodes.failure}`));
  }
  const node = nodes[0] || {};
  pairs.push(
    ['Node', node.name || summary.node || '', 'name'],
    ['Uptime', duration(node.uptime), 'uptime'],
    ['Memory', `${bytes(node.mem_used)} of ${bytes(node.mem_limit)} high watermark`, 'memory'],
    ['Disk free', `${bytes(node.disk_free)} (limit ${bytes(node.disk_free_limit)})`, 'disk'],
    ['File descriptors', `${count(node.fd_used)} of ${count(node.fd_total)}`, 'fd'],
    ['Processors', count(node.processors), 'processors'],
  );
  return facts(pairs, { id: 'node-facts' });
}
