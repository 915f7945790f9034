'use strict';
// A small amqplib service, written as any amqplib user would write it against RabbitMQ.
// Each scenario opens its own connection(s) to $AMQP_URL, checks what comes back, and prints
//   PASS <scenario> (...)   or   FAIL <scenario>: <reason>
// then the last line is "summary: passed=N failed=M skipped=0"; exit status 1 on any failure.
const amqp = require('amqplib');
const crypto = require('crypto');
const assert = require('assert').strict;

const URL = process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672/';
const N = parseInt(process.env.AMQPLIB_N || '2000', 10);
const SCENARIO_TIMEOUT_MS = parseInt(process.env.AMQPLIB_SCENARIO_TIMEOUT_MS || '60000', 10);
const RUN = crypto.randomBytes(4).toString('hex'); // resource names unique per run
const only = process.argv.slice(2);

const results = { passed: 0, failed: 0 };

function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

const sha = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

// A checkpoint to wait on: resolves once `pred()` holds (re-checked on every `poke()`).
function waiter(pred, what, ms = 30000) {
  const d = deferred();
  const check = () => { try { if (pred()) d.resolve(); } catch (e) { d.reject(e); } };
  return { poke: check, wait: () => { check(); return withTimeout(d.promise, ms, what); }, fail: d.reject };
}

async function scenario(name, fn) {
  if (only.length && !only.includes(name)) return;
  const conns = [];
  const open = async () => {
    const c = await amqp.connect(URL);
    c.on('error', (e) => { c.lastError = e; });
    conns.push(c);
    return c;
  };
  const channel = async (c, confirm = false) => {
    const ch = confirm ? await c.createConfirmChannel() : await c.createChannel();
    ch.on('error', (e) => { ch.lastError = e; });
    return ch;
  };
  const t0 = Date.now();
  try {
    await withTimeout(fn(open, channel), SCENARIO_TIMEOUT_MS, name);
    console.log(`PASS ${name} (${Date.now() - t0} ms)`);
    results.passed++;
  } catch (e) {
    const connErrors = conns.filter((c) => c.lastError).map((c) => `connection error: ${c.lastError.message}`);
    console.log(`FAIL ${name}: ${(e && e.stack) || e}${connErrors.length ? '\n  ' + connErrors.join('\n  ') : ''}`);
    results.failed++;
  } finally {
    for (const c of conns) {
      try { await withTimeout(c.close(), 5000, 'connection.close'); } catch (_) {
        try { c.connection.stream.destroy(); } catch (__) { /* already gone */ }
      }
    }
  }
}

// publish() that honours the channel's write buffer ('drain'), as amqplib's docs advise
async function publish(ch, exchange, key, body, props, cb) {
  const ok = cb ? ch.publish(exchange, key, body, props, cb) : ch.publish(exchange, key, body, props);
  if (!ok) await new Promise((resolve) => ch.once('drain', resolve));
}

function headersFor(i) {
  return {
    seq: i,
    'x-str': 'héllo wörld ✓',
    nested: { a: 1, b: { c: 'd', deep: { list: [1, 'two', { three: 3 }] } } },
    list: [1, 'two', true, { k: 'v' }, [5, 6]],
    flag: i % 2 === 0,
    big: 2 ** 40 + i,
    neg: -5 - i,
    float: 1.5 + i,
    bin: Buffer.from([0, 1, 2, 254, 255, i & 0xff]),
  };
}

function bodyFor(i) {
  // mostly small bodies, some over the 131072-byte frame_max (split across body frames)
  const size = i % 500 === 7 ? 300000 + i : (i * 37) % 4096;
  const pad = crypto.randomBytes(size);
  return Buffer.concat([Buffer.from(JSON.stringify({ i, run: RUN }) + '\n'), pad]);
}

// --------------------------------------------------------------------------------------------
async function confirmPublishConsume(open, channel) {
  const q = `amqplib.work.${RUN}`;
  const pubConn = await open();
  const pub = await channel(pubConn, true);
  await pub.assertQueue(q, { durable: true });

  const sent = new Map();
  let acked = 0; let nacked = 0;
  for (let i = 0; i < N; i++) {
    const body = bodyFor(i);
    const props = {
      persistent: true, messageId: `m-${i}`, correlationId: `c-${i}`, contentType: 'application/octet-stream',
      contentEncoding: 'binary', type: 'work', appId: 'amqplib-app', timestamp: 1700000000 + i,
      priority: i % 10, headers: headersFor(i),
    };
    sent.set(props.messageId, { hash: sha(body), len: body.length, props });
    await publish(pub, '', q, body, props, (err) => { if (err) nacked++; else acked++; });
  }
  await pub.waitForConfirms();
  assert.equal(nacked, 0, 'publisher nacks');
  assert.equal(acked, N, 'every publish confirmed');
  assert.equal((await pub.checkQueue(q)).messageCount, N, 'queue depth after confirms');

  const conConn = await open();
  const con = await channel(conConn);
  await con.prefetch(50);
  const seen = new Set();
  let inFlight = 0; let maxInFlight = 0;
  const done = waiter(() => seen.size === N, `${N} deliveries (got ${seen.size})`, 50000);
  await con.consume(q, (msg) => {
    if (msg === null) return; // broker cancelled the consumer (queue deleted)
    try {
      inFlight++; maxInFlight = Math.max(maxInFlight, inFlight);
      const id = msg.properties.messageId;
      const exp = sent.get(id);
      assert.ok(exp, `unknown messageId ${id}`);
      assert.ok(!seen.has(id), `duplicate delivery of ${id}`);
      assert.equal(msg.fields.redelivered, false, `${id} redelivered`);
      assert.equal(msg.content.length, exp.len, `${id} body length`);
      assert.equal(sha(msg.content), exp.hash, `${id} body bytes`);
      for (const k of ['messageId', 'correlationId', 'contentType', 'contentEncoding', 'type', 'appId', 'timestamp', 'priority']) {
        assert.deepEqual(msg.properties[k], exp.props[k], `${id} property ${k}`);
      }
      assert.equal(msg.properties.deliveryMode, 2, `${id} deliveryMode`);
      assert.deepEqual(msg.properties.headers, exp.props.headers, `${id} headers`);
      seen.add(id);
      setImmediate(() => { inFlight--; con.ack(msg); });
      done.poke();
    } catch (e) { done.fail(e); }
  }, { noAck: false });
  await done.wait();
  assert.ok(maxInFlight <= 50, `prefetch 50 exceeded: ${maxInFlight} unacked at once`);
  const after = await pub.checkQueue(q);
  assert.equal(after.messageCount, 0, 'queue empty after consuming');
  await pub.deleteQueue(q);
}

// --------------------------------------------------------------------------------------------
async function prefetchLimit(open, channel) {
  const q = `amqplib.prefetch.${RUN}`;
  const conn = await open();
  const pub = await channel(conn, true);
  await pub.assertQueue(q, { durable: false, autoDelete: false });
  for (let i = 0; i < 30; i++) await publish(pub, '', q, Buffer.from(`p${i}`), {});
  await pub.waitForConfirms();

  const con = await channel(conn);
  await con.prefetch(10);
  const got = [];
  let ackEach = false;
  const w10 = waiter(() => got.length >= 10, 'first 10 deliveries');
  const w11 = waiter(() => got.length >= 11, '11th delivery after one ack');
  const w30 = waiter(() => got.length >= 30, 'all 30 deliveries');
  await con.consume(q, (msg) => {
    if (msg === null) return; // cancelled when the queue is deleted at the end
    got.push(msg);
    if (ackEach) con.ack(msg);
    w10.poke(); w11.poke(); w30.poke();
  });
  await w10.wait();
  const depth = (await pub.checkQueue(q)).messageCount; // a round trip after the 10th delivery
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(got.length, 10, 'prefetch 10: deliveries before any ack');
  assert.equal(depth, 20, 'ready messages while 10 are unacked');
  con.ack(got[0]);
  await w11.wait();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(got.length, 11, 'one ack frees exactly one slot');
  ackEach = true;
  con.ack(got[10], true); // multiple: acks deliveries 2..11
  await w30.wait();
  assert.deepEqual(got.map((m) => m.content.toString()), Array.from({ length: 30 }, (_, i) => `p${i}`), 'FIFO order');
  assert.equal((await pub.checkQueue(q)).messageCount, 0);
  await pub.deleteQueue(q);
}

// --------------------------------------------------------------------------------------------
async function nackRequeue(open, channel) {
  const q = `amqplib.nack.${RUN}`;
  const dlq = `amqplib.nack.dead.${RUN}`;
  const conn = await open();
  const pub = await channel(conn, true);
  await pub.assertQueue(dlq, { durable: false });
  await pub.assertQueue(q, { durable: false, deadLetterExchange: '', deadLetterRoutingKey: dlq });
  for (const b of ['a', 'b', 'c']) await publish(pub, '', q, Buffer.from(b), { messageId: b });
  await pub.waitForConfirms();

  const con = await channel(conn);
  await con.prefetch(1);
  const log = [];
  const w = waiter(() => log.length >= 4, 'a, a(redelivered), b, c');
  const { consumerTag } = await con.consume(q, (msg) => {
    if (msg === null) return;
    const body = msg.content.toString();
    log.push(`${body}${msg.fields.redelivered ? '*' : ''}`);
    if (body === 'a' && !msg.fields.redelivered) con.nack(msg, false, true); // requeue
    else if (body === 'c') con.reject(msg, false); // dead-letter
    else con.ack(msg);
    w.poke();
  });
  await w.wait();
  assert.deepEqual(log, ['a', 'a*', 'b', 'c'], 'delivery order with nack(requeue) at the head');

  // the rejected message is dead-lettered with an x-death header
  let dead = false;
  for (let i = 0; i < 100 && !dead; i++) {
    dead = await pub.get(dlq, { noAck: true });
    if (!dead) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(dead, 'rejected message reached the dead-letter queue');
  assert.equal(dead.content.toString(), 'c');
  const h = dead.properties.headers;
  assert.ok(Array.isArray(h['x-death']) && h['x-death'].length === 1, `x-death: ${JSON.stringify(h)}`);
  const xd = h['x-death'][0];
  assert.equal(xd.reason, 'rejected');
  assert.equal(xd.queue, q);
  assert.equal(xd.count, 1);
  assert.equal(xd.exchange, '');
  assert.deepEqual(xd['routing-keys'], [q]);
  assert.equal(h['x-first-death-reason'], 'rejected');
  assert.equal(h['x-first-death-queue'], q);

  // nack(multiple, requeue): everything unacked comes back, in the original order, redelivered
  await con.cancel(consumerTag);
  const con2 = await channel(conn);
  for (let i = 0; i < 5; i++) await publish(pub, '', q, Buffer.from(`m${i}`), {});
  await pub.waitForConfirms();
  await con2.prefetch(5);
  const batch = [];
  const w5 = waiter(() => batch.length >= 5, '5 deliveries');
  const w10 = waiter(() => batch.length >= 10, '5 redeliveries after nack(multiple, requeue)');
  await con2.consume(q, (msg) => { if (msg === null) return; batch.push(msg); w5.poke(); w10.poke(); });
  await w5.wait();
  con2.nack(batch[4], true, true);
  await w10.wait();
  con2.ackAll();
  assert.deepEqual(batch.map((m) => `${m.content}${m.fields.redelivered ? '*' : ''}`),
    ['m0', 'm1', 'm2', 'm3', 'm4', 'm0*', 'm1*', 'm2*', 'm3*', 'm4*']);
  await pub.deleteQueue(q);
  await pub.deleteQueue(dlq);
}

// --------------------------------------------------------------------------------------------
async function mandatoryReturn(open, channel) {
  const ex = `amqplib.noroute.${RUN}`;
  const conn = await open();
  const ch = await channel(conn, true);
  await ch.assertExchange(ex, 'direct', { durable: false, autoDelete: false });
  const returned = [];
  const w = waiter(() => returned.length >= 2, '2 basic.return');
  ch.on('return', (msg) => { returned.push(msg); w.poke(); });
  const confirms = [];
  const cb = (tag) => (err) => confirms.push(err ? `nack:${tag}` : `ack:${tag}`);
  await publish(ch, ex, 'nowhere', Buffer.from('ret-1'), { mandatory: true, messageId: 'r1', headers: { why: 'no binding' } }, cb('r1'));
  await publish(ch, '', `amqplib.no-such-queue.${RUN}`, Buffer.from('ret-2'), { mandatory: true, messageId: 'r2' }, cb('r2'));
  await publish(ch, ex, 'nowhere', Buffer.from('dropped'), { mandatory: false, messageId: 'r3' }, cb('r3'));
  await ch.waitForConfirms();
  await w.wait();
  assert.deepEqual(confirms, ['ack:r1', 'ack:r2', 'ack:r3'], 'unroutable messages are still confirmed (ack)');
  assert.equal(returned.length, 2, 'only mandatory messages are returned');
  const [r1, r2] = returned;
  assert.equal(r1.fields.replyCode, 312);
  assert.equal(r1.fields.replyText, 'NO_ROUTE');
  assert.equal(r1.fields.exchange, ex);
  assert.equal(r1.fields.routingKey, 'nowhere');
  assert.equal(r1.properties.messageId, 'r1');
  assert.deepEqual(r1.properties.headers, { why: 'no binding' });
  assert.equal(r1.content.toString(), 'ret-1');
  assert.equal(r2.fields.replyCode, 312);
  assert.equal(r2.fields.exchange, '');
  assert.equal(r2.properties.messageId, 'r2');
  await ch.deleteExchange(ex);
}

// --------------------------------------------------------------------------------------------
async function rpcDirectReplyTo(open, channel) {
  const q = `amqplib.rpc.${RUN}`;
  const serverConn = await open();
  const srv = await channel(serverConn);
  await srv.assertQueue(q, { durable: false, exclusive: true });
  await srv.prefetch(5);
  await srv.consume(q, (msg) => {
    if (msg === null) return;
    const n = parseInt(msg.content.toString(), 10);
    srv.sendToQueue(msg.properties.replyTo, Buffer.from(String(n * n)), { correlationId: msg.properties.correlationId });
    srv.ack(msg);
  });

  const clientConn = await open();
  const cli = await channel(clientConn);
  const pending = new Map();
  await cli.consume('amq.rabbitmq.reply-to', (msg) => {
    if (msg === null) return;
    const p = pending.get(msg.properties.correlationId);
    if (p) { pending.delete(msg.properties.correlationId); p.resolve(msg.content.toString()); }
  }, { noAck: true });
  const calls = [];
  for (let i = 0; i < 50; i++) {
    const d = deferred();
    const corr = `${RUN}-${i}`;
    pending.set(corr, d);
    cli.sendToQueue(q, Buffer.from(String(i)), { correlationId: corr, replyTo: 'amq.rabbitmq.reply-to' });
    calls.push(d.promise);
  }
  const replies = await withTimeout(Promise.all(calls), 30000, '50 RPC replies');
  assert.deepEqual(replies, Array.from({ length: 50 }, (_, i) => String(i * i)));
}

// --------------------------------------------------------------------------------------------
async function topicRouting(open, channel) {
  const ex = `amqplib.topic.${RUN}`;
  const conn = await open();
  const ch = await channel(conn, true);
  await ch.assertExchange(ex, 'topic', { durable: false });
  const patterns = { star: 'orders.*', hash: 'orders.#', tail: '#.eu', exact: 'orders.created.eu' };
  const queues = {};
  for (const [k, pat] of Object.entries(patterns)) {
    const { queue } = await ch.assertQueue('', { exclusive: true }); // server-named
    assert.match(queue, /^amq\.gen-/);
    await ch.bindQueue(queue, ex, pat);
    queues[k] = queue;
  }
  const keys = ['orders.created', 'orders.created.eu', 'orders', 'users.eu', 'orders.x.y.z', 'eu'];
  for (const key of keys) await publish(ch, ex, key, Buffer.from(key), {});
  await ch.waitForConfirms();
  const got = {};
  for (const [k, queue] of Object.entries(queues)) {
    got[k] = [];
    for (;;) {
      const m = await ch.get(queue, { noAck: true });
      if (!m) break;
      got[k].push(m.content.toString());
    }
  }
  assert.deepEqual(got, {
    star: ['orders.created'],
    hash: ['orders.created', 'orders.created.eu', 'orders', 'orders.x.y.z'],
    tail: ['orders.created.eu', 'users.eu', 'eu'],
    exact: ['orders.created.eu'],
  });
  await ch.deleteExchange(ex);
}

// --------------------------------------------------------------------------------------------
async function channelErrors(open, channel) {
  const conn = await open();
  const ch1 = await channel(conn);
  const closed1 = new Promise((r) => ch1.once('close', r));
  await assert.rejects(ch1.checkQueue(`amqplib.missing.${RUN}`), (e) => e.code === 404 && /NOT_FOUND/.test(e.message));
  await closed1;

  const q = `amqplib.args.${RUN}`;
  const ch2 = await channel(conn);
  await ch2.assertQueue(q, { durable: false, messageTtl: 60000 });
  const closed2 = new Promise((r) => ch2.once('close', r));
  await assert.rejects(ch2.assertQueue(q, { durable: false, messageTtl: 1000 }),
    (e) => e.code === 406 && /PRECONDITION_FAILED/.test(e.message) && /x-message-ttl/.test(e.message));
  await closed2;

  // the connection survives channel errors
  const ch3 = await channel(conn);
  const ok = await ch3.checkQueue(q);
  assert.equal(ok.queue, q);
  await ch3.deleteQueue(q);
  assert.equal(conn.lastError, undefined, 'no connection error');
}

// --------------------------------------------------------------------------------------------
async function consumerCancelNotify(open, channel) {
  const q = `amqplib.cancel.${RUN}`;
  const conn = await open();
  const ch = await channel(conn);
  await ch.assertQueue(q, { durable: false });
  const d = deferred();
  await ch.consume(q, (msg) => { if (msg === null) d.resolve('cancelled'); });
  const admin = await channel(await open());
  await admin.deleteQueue(q);
  assert.equal(await withTimeout(d.promise, 20000, 'basic.cancel from the broker'), 'cancelled');
  // the channel is still open and usable
  await ch.assertQueue(q, { durable: false });
  await ch.deleteQueue(q);
}

(async () => {
  console.log(`amqplib ${require('amqplib/package.json').version} on node ${process.version}; broker ${URL.replace(/\/\/[^@]*@/, '//')}; run ${RUN}; N=${N}`);
  await scenario('confirm-publish-consume', confirmPublishConsume);
  await scenario('prefetch-limit', prefetchLimit);
  await scenario('nack-requeue-deadletter', nackRequeue);
  await scenario('mandatory-return', mandatoryReturn);
  await scenario('rpc-direct-reply-to', rpcDirectReplyTo);
  await scenario('topic-routing', topicRouting);
  await scenario('channel-errors', channelErrors);
  await scenario('consumer-cancel-notify', consumerCancelNotify);
  console.log(`summary: passed=${results.passed} failed=${results.failed} skipped=0`);
  process.exit(results.failed === 0 ? 0 : 1);
})().catch((e) => {
  console.log(`FAIL harness: ${(e && e.stack) || e}`);
  console.log(`summary: passed=${results.passed} failed=${results.failed + 1} skipped=0`);
  process.exit(1);
});
