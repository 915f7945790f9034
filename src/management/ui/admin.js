/**
 * The admin page: users (`/api/users`), virtual hosts (`/api/vhosts`) and permissions
 * (`/api/permissions`), each listed with add and delete, and policies (policies.js). Each
 * section shows its own refusal (a `policymaker` may not list users, say) and the others
 * carry on.
 */

import { ApiError, apiPath, failureText, get, put, remove, tagList } from './api.js';
import { count, el, fill, idPart, section, table, twoStepButton } from './dom.js';
import { actionForm, required, selectField, setOptions, textField, valueOf } from './forms.js';
import { policiesSection } from './policies.js';

export function open(main, context) {
  const users = usersSection(context);
  const vhosts = vhostsSection(context);
  const permissions = permissionsSection(context);
  const policies = policiesSection(context);
  fill(main, el('h1', {}, 'Admin'), users.node, vhosts.node, permissions.node, policies.node);

  const refresh = async () => {
    const [userList, vhostList] = await Promise.all([get('/api/users').catch(refusal), get('/api/vhosts').catch(refusal)]);
    await Promise.all([
      users.refresh(userList),
      vhosts.refresh(vhostList),
      permissions.refresh(userList, vhostList),
      policies.refresh(vhostList),
    ]);
  };
  return { refresh };
}

/** A refused list, kept to show in its section (a refused login still ends the session). */
function refusal(e) {
  if (e instanceof ApiError && e.loginFailed) throw e;
  return { refused: failureText(e) };
}

/** Fills `list` with `render(rows)`, or with the reason the rows could not be read. */
function fillOrRefuse(list, rows, render) {
  if (rows.refused) fill(list, el('p', { class: 'error' }, rows.refused));
  else fill(list, render(rows));
}

function usersSection(context) {
  const list = el('div', { id: 'users-list' });
  const form = actionForm('add-user', [
    textField('add-user-name', 'Username', { required: true, autocomplete: 'off' }),
    textField('add-user-password', 'Password', { type: 'password', autocomplete: 'new-password' }),
    textField('add-user-tags', 'Tags', { placeholder: 'administrator, monitoring, policymaker, management', autocomplete: 'off' }),
  ], 'Add user', async (f) => {
    const name = required(valueOf(f, 'add-user-name'), 'A user needs a name.');
    const password = required(valueOf(f, 'add-user-password'), 'A user needs a password.');
    const { status } = await put(apiPath('users', name), { password, tags: valueOf(f, 'add-user-tags') });
    f.querySelector('#add-user-name').value = '';
    f.querySelector('#add-user-password').value = '';
    await context.refresh();
    return status === 201 ? `User '${name}' added.` : `User '${name}' updated.`;
  });
  const node = section('Users', { id: 'users-section' }, list, el('h3', {}, 'Add or update a user'), form);
  const refresh = async (users) => fillOrRefuse(list, users, (rows) => table([
    { title: 'Name', cell: (u) => u.name, key: 'name' },
    { title: 'Tags', cell: (u) => tagList(u.tags).join(', ') || '—', key: 'tags' },
    { title: 'Password', cell: (u) => (u.password_hash ? 'set' : 'none') },
    {
      title: '',
      cell: (u) => twoStepButton(`delete-user-${idPart(u.name)}`, 'Delete', async () => {
        await remove(apiPath('users', u.name));
        await context.refresh();
      }),
    },
  ], rows, { id: 'users-table', empty: 'No users.' }));
  return { node, refresh };
}

function vhostsSection(context) {
  const list = el('div', { id: 'vhosts-list' });
  const form = actionForm('add-vhost', [
    textField('add-vhost-name', 'Name', { required: true, autocomplete: 'off' }),
    textField('add-vhost-description', 'Description', { autocomplete: 'off' }),
    textField('add-vhost-tags', 'Tags', { autocomplete: 'off' }),
  ], 'Add virtual host', async (f) => {
    const name = required(valueOf(f, 'add-vhost-name'), 'A virtual host needs a name.');
    const { status } = await put(apiPath('vhosts', name), {
      description: valueOf(f, 'add-vhost-description'),
      tags: valueOf(f, 'add-vhost-tags'),
    });
    f.querySelector('#add-vhost-name').value = '';
    await context.refresh();
    return status === 201 ? `Virtual host '${name}' added.` : `Virtual host '${name}' updated.`;
  });
  const node = section('Virtual hosts', { id: 'vhosts-section' }, list, el('h3', {}, 'Add a virtual host'), form);
  const refresh = async (vhosts) => fillOrRefuse(list, vhosts, (rows) => table([
    { title: 'Name', cell: (v) => v.name, key: 'name' },
    { title: 'Description', cell: (v) => v.description || '' },
    { title: 'Ready', cell: (v) => count(v.messages_ready), num: true },
    { title: 'Unacked', cell: (v) => count(v.messages_unacknowledged), num: true },
    { title: 'Total', cell: (v) => count(v.messages), num: true },
    {
      title: '',
      cell: (v) => twoStepButton(`delete-vhost-${idPart(v.name)}`, 'Delete', async () => {
        await remove(apiPath('vhosts', v.name));
        await context.refresh();
      }),
    },
  ], rows, { id: 'vhosts-table', empty: 'No virtual hosts.' }));
  return { node, refresh };
}

function permissionsSection(context) {
  const list = el('div', { id: 'permissions-list' });
  const form = actionForm('set-permission', [
    selectField('set-permission-user', 'User', [], ''),
    selectField('set-permission-vhost', 'Virtual host', ['/'], '/'),
    textField('set-permission-configure', 'Configure regexp', { value: '.*', autocomplete: 'off' }),
    textField('set-permission-write', 'Write regexp', { value: '.*', autocomplete: 'off' }),
    textField('set-permission-read', 'Read regexp', { value: '.*', autocomplete: 'off' }),
  ], 'Set permission', async (f) => {
    const user = required(valueOf(f, 'set-permission-user'), 'Pick a user.');
    const vhost = valueOf(f, 'set-permission-vhost');
    await put(apiPath('permissions', vhost, user), {
      configure: valueOf(f, 'set-permission-configure'),
      write: valueOf(f, 'set-permission-write'),
      read: valueOf(f, 'set-permission-read'),
    });
    await context.refresh();
    return `Permissions of '${user}' on '${vhost}' set.`;
  });
  const node = section('Permissions', { id: 'permissions-section' }, list, el('h3', {}, 'Set permission'), form);
  const refresh = async (users, vhosts) => {
    if (!users.refused) setOptions(form.querySelector('#set-permission-user'), users.map((u) => u.name), 'guest');
    if (!vhosts.refused) setOptions(form.querySelector('#set-permission-vhost'), vhosts.map((v) => v.name), '/');
    const permissions = await get('/api/permissions').catch(refusal);
    fillOrRefuse(list, permissions, (rows) => table([
      { title: 'User', cell: (p) => p.user, key: 'user' },
      { title: 'Virtual host', cell: (p) => p.vhost, key: 'vhost' },
      { title: 'Configure', cell: (p) => el('code', {}, p.configure) },
      { title: 'Write', cell: (p) => el('code', {}, p.write) },
      { title: 'Read', cell: (p) => el('code', {}, p.read) },
      {
        title: '',
        cell: (p) => twoStepButton(`clear-permission-${idPart(p.vhost)}-${idPart(p.user)}`, 'Clear', async () => {
          await remove(apiPath('permissions', p.vhost, p.user));
          await context.refresh();
        }),
      },
    ], rows, { id: 'permissions-table', empty: 'No permissions.', rowKey: (p) => ({ user: p.user, vhost: p.vhost }) }));
  };
  return { node, refresh };
}
