/**
 * The app: login and logout, the hash router (`#/`, `#/queues`, `#/queues/%2F/name`,
 * `#/exchanges[/vhost/name]`, `#/connections`, `#/admin`) and the live update.
 *
 * A page is a module with `open(main, context, ...pathSegments)`, which builds the page once
 * (its forms included) and returns `{refresh}`; `refresh()` reads the API and replaces only
 * the page's figures and tables. The live update calls it every 5 seconds (RabbitMQ's
 * default), one refresh at a time, so an older answer never overwrites a newer one.
 */

import { ApiError, failureText, login, session, tagList } from './api.js';
import { disarmAll, el, fill } from './dom.js';
import * as overview from './overview.js';
import * as queues from './queues.js';
import * as queue from './queue.js';
import * as exchanges from './exchanges.js';
import * as connections from './connections.js';
import * as admin from './admin.js';

const REFRESH_MS = 5000;

const $ = (id) => document.getElementById(id);

/** The routes: first path segment → nav entry, title and how to open the page. */
const ROUTES = {
  '': { nav: 'overview', title: 'Overview', open: (main, ctx) => overview.open(main, ctx) },
  queues: {
    nav: 'queues',
    title: 'Queues',
    open: (main, ctx, vhost, name) => (name === undefined ? queues.open(main, ctx) : queue.open(main, ctx, vhost, name)),
  },
  exchanges: {
    nav: 'exchanges',
    title: 'Exchanges',
    open: (main, ctx, vhost, name) =>
      (name === undefined ? exchanges.openList(main, ctx) : exchanges.openOne(main, ctx, vhost, name)),
  },
  connections: { nav: 'connections', title: 'Connections', open: (main, ctx) => connections.open(main, ctx) },
  admin: { nav: 'admin', title: 'Admin', open: (main, ctx) => admin.open(main, ctx) },
};

/** The page on screen and its refresh state. */
let current = null;
let timer = null;

/** `#/queues/%2F/a%20b` → `['queues', '/', 'a b']`; a bad escape keeps the raw text. */
function routeSegments() {
  const raw = location.hash.replace(/^#\/?/, '');
  if (raw === '') return [''];
  return raw.split('/').map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
}

function showLogin(reason) {
  stopPage();
  $('nav').hidden = true;
  $('session').hidden = true;
  $('page').hidden = true;
  $('page-error').hidden = true;
  $('login').hidden = false;
  const error = $('login-error');
  error.hidden = !reason;
  error.textContent = reason || '';
  $('login-password').value = '';
  $('login-username').focus();
}

function showApp() {
  const who = session.current();
  $('login').hidden = true;
  $('nav').hidden = false;
  $('session').hidden = false;
  $('page').hidden = false;
  $('user-name').textContent = who.user;
  const tags = tagList(who.tags);
  const seesAdmin = tags.includes('administrator') || tags.includes('policymaker');
  document.querySelector('[data-nav="admin"]').hidden = !seesAdmin;
  openPage();
}

function stopPage() {
  clearInterval(timer);
  timer = null;
  current = null;
}

/** Opens the page the hash names and starts its live update. */
function openPage() {
  stopPage();
  disarmAll();
  const [first, ...rest] = routeSegments();
  const route = ROUTES[first];
  const main = $('page');
  main.replaceChildren();
  for (const link of document.querySelectorAll('#nav a')) {
    link.classList.toggle('active', route !== undefined && link.dataset.nav === route.nav);
  }
  $('page-error').hidden = true;
  if (!route) {
    main.dataset.page = 'missing';
    fill(main, el('h1', {}, 'Not found'), el('p', {}, 'There is no such page. '), el('a', { href: '#/' }, 'Overview'));
    return;
  }
  main.dataset.page = route.nav;
  document.title = `warren: ${route.title}`;
  const state = { page: null, running: null, again: false };
  current = state;
  const context = {
    refresh: () => refresh(state),
    navigate: (hash) => {
      location.hash = hash;
    },
  };
  state.page = route.open(main, context, ...rest);
  refresh(state);
  timer = setInterval(() => refresh(state), REFRESH_MS);
}

/**
 * One refresh of `state`'s page, serialised: asked while one runs, it runs once more after.
 * A login that stopped working goes back to the login form with RabbitMQ's reason.
 */
function refresh(state) {
  if (state.running) {
    state.again = true;
    return state.running;
  }
  state.running = (async () => {
    do {
      state.again = false;
      try {
        await state.page.refresh();
        if (current === state) refreshed();
      } catch (e) {
        if (current !== state) return;
        if (e instanceof ApiError && e.loginFailed) {
          session.clear();
          showLogin(e.reason || 'Login failed');
          return;
        }
        const banner = $('page-error');
        banner.textContent = failureText(e);
        banner.hidden = false;
      }
    } while (state.again && current === state);
  })().finally(() => {
    state.running = null;
  });
  return state.running;
}

/** Marks a successful refresh: the time, and a counter a test can wait on. */
function refreshed() {
  $('page-error').hidden = true;
  const status = $('refresh-status');
  status.dataset.refreshes = String(Number(status.dataset.refreshes || 0) + 1);
  status.textContent = `Updated ${new Date().toLocaleTimeString('en-GB')}`;
}

async function submitLogin(event) {
  event.preventDefault();
  const user = $('login-username').value;
  const password = $('login-password').value;
  const button = $('login-submit');
  button.disabled = true;
  try {
    await login(user, password);
    $('login-error').hidden = true;
    if (location.hash === '' || location.hash === '#') location.hash = '#/';
    showApp();
  } catch (e) {
    session.clear();
    showLogin(failureText(e));
    $('login-username').value = user;
  } finally {
    button.disabled = false;
  }
}

function start() {
  $('login-form').addEventListener('submit', submitLogin);
  $('logout').addEventListener('click', (event) => {
    event.preventDefault();
    session.clear();
    showLogin();
  });
  window.addEventListener('hashchange', () => {
    if (session.current()) openPage();
  });
  if (session.current()) showApp();
  else showLogin();
}

start();
