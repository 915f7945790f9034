/**
 * The connections page: open connections (`/api/connections`), each closable
 * (`DELETE /api/connections/{name}` with RabbitMQ's `X-Reason` header), their channels
 * (`/api/channels`) and consumers (`/api/consumers`).
 */

import { apiPath, get, remove } from './api.js';
import { bytes, count, el, fill, idPart, rateOf, section, table, twoStepButton } from './dom.js';

/** The reason RabbitMQ's UI gives a client whose connection it closes. */
const CLOSE_REASON = 'Closed via management plugin';

export function open(main, context) {
  const connections = el('div', { id: 'connections-list' });
  const channels = el('div', { id: 'channels-list' });
  const consumers = el('div', { id: 'consumers-list' });
  fill(
    main,
    el('h1', {}, 'Connections'),
    section('Connections', { id: 'connections-section' }, connections),
    section('Channels', { id: 'channels-section' }, channels),
    section('Consumers', { id: 'consumers-section' }, consumers),
  );
  const refresh = async () => {
    const [conns, chans, cons] = await Promise.all([get('/api/connections'), get('/api/channels'), get('/api/consumers')]);
    fill(connections, connectionTable(conns, context));
    fill(channels, channelTable(chans));
    fill(consumers, consumerTable(cons));
  };
  return { refresh };
}

function connectionTable(connections, context) {
  return table([
    {
      title: 'Name',
      cell: (c) => [c.name, c.user_provided_name ? el('div', { class: 'muted' }, String(c.user_provided_name)) : null],
      key: 'name',
    },
    { title: 'User', cell: (c) => c.user },
    { title: 'Virtual host', cell: (c) => c.vhost },
    { title: 'State', cell: (c) => el('span', { class: `state ${c.state}` }, c.state || '') },
    { title: 'Protocol', cell: (c) => c.protocol || '' },
    { title: 'TLS', cell: (c) => (c.ssl ? 'yes' : 'no') },
    { title: 'Channels', cell: (c) => count(c.channels), num: true, key: 'channels' },
    { title: 'From client', cell: (c) => `${bytes(rateOf(c, 'recv_oct'))}/s`, num: true },
    { title: 'To client', cell: (c) => `${bytes(rateOf(c, 'send_oct'))}/s`, num: true },
    {
      title: '',
      cell: (c) => twoStepButton(`close-${idPart(c.name)}`, 'Close', async () => {
        await remove(apiPath('connections', c.name), { headers: { 'X-Reason': CLOSE_REASON } });
        await context.refresh();
      }),
    },
  ], connections, { id: 'connections-table', empty: 'No connections.', rowKey: (c) => ({ name: c.name, user: c.user }) });
}

function channelTable(channels) {
  const mode = (ch) => [ch.confirm ? 'confirm' : null, ch.transactional ? 'transactional' : null].filter(Boolean).join(', ') || '—';
  return table([
    { title: 'Channel', cell: (ch) => ch.name },
    { title: 'User', cell: (ch) => ch.user },
    { title: 'Virtual host', cell: (ch) => ch.vhost },
    { title: 'Mode', cell: mode },
    { title: 'Prefetch', cell: (ch) => count(ch.prefetch_count), num: true },
    { title: 'Unacked', cell: (ch) => count(ch.messages_unacknowledged), num: true },
    { title: 'Consumers', cell: (ch) => count(ch.consumer_count), num: true },
  ], channels, { id: 'channels-table', empty: 'No channels.' });
}

function consumerTable(consumers) {
  return table([
    { title: 'Consumer tag', cell: (c) => c.consumer_tag },
    { title: 'Queue', cell: (c) => `${c.queue?.name ?? ''} (${c.queue?.vhost ?? ''})` },
    { title: 'Channel', cell: (c) => c.channel_details?.name ?? '' },
    { title: 'Ack required', cell: (c) => (c.ack_required ? 'yes' : 'no') },
    { title: 'Exclusive', cell: (c) => (c.exclusive ? 'yes' : 'no') },
    { title: 'Prefetch', cell: (c) => count(c.prefetch_count), num: true },
  ], consumers, { id: 'consumers-table', empty: 'No consumers.', rowKey: (c) => ({ name: c.consumer_tag }) });
}
