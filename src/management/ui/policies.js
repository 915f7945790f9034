/**
 * The policies section of the admin page: `GET /api/policies`, `PUT` and `DELETE
 * /api/policies/{vhost}/{name}` with RabbitMQ's body (`pattern`, `definition`, `priority`,
 * `apply-to`). A broker without the endpoint (404) shows "Policies are not available" and no
 * form, rather than an error.
 */

import { ApiError, apiPath, failureText, get, put, remove } from './api.js';
import { argumentList, el, fill, idPart, section, table, twoStepButton } from './dom.js';
import { actionForm, argumentsEditor, required, selectField, setOptions, textField, valueOf } from './forms.js';

/** What a policy may apply to, in RabbitMQ 3.10's words. */
const APPLY_TO = [['all', 'Exchanges and queues'], ['queues', 'Queues'], ['exchanges', 'Exchanges']];

export function policiesSection(context) {
  const list = el('div', { id: 'policies-list' });
  const definition = argumentsEditor('add-policy-definition', 'Definition');
  const form = actionForm('add-policy', [
    selectField('add-policy-vhost', 'Virtual host', ['/'], '/'),
    textField('add-policy-name', 'Name', { required: true, autocomplete: 'off' }),
    textField('add-policy-pattern', 'Pattern', { required: true, placeholder: '^amq\\.', autocomplete: 'off' }),
    selectField('add-policy-apply-to', 'Apply to', APPLY_TO, 'all'),
    textField('add-policy-priority', 'Priority', { type: 'number', value: '0' }),
    definition.node,
  ], 'Add / update policy', async (f) => {
    const vhost = valueOf(f, 'add-policy-vhost');
    const name = required(valueOf(f, 'add-policy-name'), 'A policy needs a name.');
    const priority = Number(valueOf(f, 'add-policy-priority') || 0);
    if (!Number.isInteger(priority)) throw new Error('Priority: a whole number.');
    const { status } = await put(apiPath('policies', vhost, name), {
      pattern: required(valueOf(f, 'add-policy-pattern'), 'A policy needs a pattern.'),
      definition: definition.read(),
      priority,
      'apply-to': valueOf(f, 'add-policy-apply-to'),
    });
    await context.refresh();
    return status === 201 ? `Policy '${name}' added.` : `Policy '${name}' updated.`;
  });
  const formPart = el('div', { id: 'add-policy-part' }, el('h3', {}, 'Add or update a policy'), form);
  const node = section('Policies', { id: 'policies-section' }, list, formPart);

  const refresh = async (vhosts) => {
    let policies;
    try {
      policies = await get('/api/policies');
    } catch (e) {
      if (e instanceof ApiError && e.loginFailed) throw e;
      const missing = e instanceof ApiError && e.status === 404;
      fill(list, el('p', { class: missing ? 'muted' : 'error', id: 'policies-unavailable' },
        missing ? 'Policies are not available on this broker.' : failureText(e)));
      formPart.hidden = true;
      return;
    }
    formPart.hidden = false;
    if (Array.isArray(vhosts)) setOptions(form.querySelector('#add-policy-vhost'), vhosts.map((v) => v.name), '/');
    fill(list, table([
      { title: 'Virtual host', cell: (p) => p.vhost },
      { title: 'Name', cell: (p) => p.name, key: 'name' },
      { title: 'Pattern', cell: (p) => el('code', {}, p.pattern) },
      { title: 'Apply to', cell: (p) => p['apply-to'] },
      { title: 'Definition', cell: (p) => argumentList(p.definition) },
      { title: 'Priority', cell: (p) => String(p.priority ?? 0), num: true },
      {
        title: '',
        cell: (p) => twoStepButton(`delete-policy-${idPart(p.vhost)}-${idPart(p.name)}`, 'Delete', async () => {
          await remove(apiPath('policies', p.vhost, p.name));
          await context.refresh();
        }),
      },
    ], policies, { id: 'policies-table', empty: 'No policies.' }));
  };
  return { node, refresh };
}
