/**
 * The management API over fetch: HTTP basic auth from the credentials kept in sessionStorage,
 * JSON in and out, and failures as ApiError with RabbitMQ's `error` and `reason`.
 *
 * Requests go with `credentials: 'omit'`: the Authorization header is ours, so the browser's
 * own login prompt (which RabbitMQ's `WWW-Authenticate` challenge would otherwise bring up)
 * never appears; a refused login comes back here as a 401 to show on the login form.
 */

const STORAGE_KEY = 'warren.session';

/** A refused call: the HTTP status and RabbitMQ's error body. */
export class ApiError extends Error {
  constructor(status, error, reason) {
    super(reason || error || `HTTP ${status}`);
    this.status = status;
    this.error = error || '';
    this.reason = reason || '';
  }

  /**
   * The credentials themselves were refused (`not_authorized`, or a 401 without a body), as
   * opposed to a call the user's tags or permissions do not allow (`not_authorised`).
   */
  get loginFailed() {
    return this.status === 401 && this.error !== 'not_authorised';
  }
}

/** `Basic base64(user:password)`, the text as UTF-8 (btoa alone takes only Latin-1). */
function basicAuth(user, password) {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return `Basic ${btoa(binary)}`;
}

/** Who is logged in for this browser tab: `{user, tags, authorization}` or null. */
export const session = {
  current() {
    try {
      return JSON.parse(sessionStorage.getItem(STORAGE_KEY) || 'null');
    } catch {
      return null;
    }
  },
  save(user, tags, authorization) {
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ user, tags, authorization }));
  },
  clear() {
    sessionStorage.removeItem(STORAGE_KEY);
  },
};

/** `/api/` + the segments, each URL-encoded (the vhost `/` is `%2F`). */
export function apiPath(...segments) {
  return '/api/' + segments.map((s) => encodeURIComponent(s)).join('/');
}

/**
 * One call. `options.body` is sent as JSON; `options.accept` lists statuses besides 2xx that
 * are answers rather than failures (a health check's 503); `options.headers` adds headers.
 * Resolves to `{status, body}` (body: parsed JSON, or null when empty).
 */
export async function call(method, path, options = {}) {
  const { body, accept = [], headers = {}, authorization } = options;
  const auth = authorization || session.current()?.authorization;
  const sent = { ...headers };
  if (auth) sent.Authorization = auth;
  if (body !== undefined) sent['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, 'network', `Cannot reach the broker (${e.message})`);
  }
  const text = await response.text();
  let parsed = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = { reason: text };
    }
  }
  if (response.ok || accept.includes(response.status)) {
    return { status: response.status, body: parsed };
  }
  const reason = parsed?.reason ?? (response.status === 401 ? 'Login failed' : '');
  throw new ApiError(response.status, parsed?.error, typeof reason === 'string' ? reason : JSON.stringify(reason));
}

export const get = async (path, options) => (await call('GET', path, options)).body;
export const put = (path, body, options = {}) => call('PUT', path, { ...options, body });
export const post = async (path, body, options = {}) => (await call('POST', path, { ...options, body })).body;
export const remove = (path, options) => call('DELETE', path, options);

/** What went wrong, in RabbitMQ's words when it said something. */
export function failureText(e) {
  if (e instanceof ApiError) {
    if (e.status === 404 && !e.reason) return 'Not found.';
    return e.reason || e.error || `HTTP ${e.status}`;
  }
  return e?.message || String(e);
}

/** Checks credentials with `GET /api/whoami`; on success keeps them for this tab. */
export async function login(user, password) {
  const authorization = basicAuth(user, password);
  const { body } = await call('GET', '/api/whoami', { authorization });
  session.save(body.name, body.tags, authorization);
  return body;
}

/** RabbitMQ's tags come as a list (3.10) or a comma-separated string (older answers). */
export function tagList(tags) {
  if (Array.isArray(tags)) return tags;
  return String(tags || '').split(',').map((t) => t.trim()).filter(Boolean);
}
