/* api: the one way the front end talks to a server's JSON API (Web Access's
 * client API, and the Management API for the Console). Sends the CSRF
 * token on every call that changes something, keeps the session cookie
 * same-origin, turns every failure into an ApiError with the server's code
 * and message, and drops answers that arrive out of order: latest(kind, ...)
 * numbers each request of a kind, and only the newest one's answer (or
 * failure) reaches the caller. */

/* What latest() gives for an answer that a newer request of its kind (or
 * supersede()) has made obsolete: the caller does nothing with it. */
export const SUPERSEDED = Symbol('superseded');

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status; // HTTP status, 0 when the server was not reached
    this.code = code; // the server's error code ("auth-failed", ...)
  }
}

/* "?a=1&b=2" from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

export class ApiClient {
  /* base: the API's URL prefix ending in "/". onRequest(): called when a
   * request starts, returns what to call when it ends (loading feedback).
   * onUnauthorized(error): the session is gone. */
  constructor({ base = '', onRequest = null, onUnauthorized = null } = {}) {
    this.base = base;
    this.csrf = null;
    this.onRequest = onRequest;
    this.onUnauthorized = onUnauthorized;
    this.seqs = new Map();
  }

  /* headers: more request headers (e.g. the Console's background mark). */
  async call(method, path, body, headers) {
    const done = this.onRequest ? this.onRequest() : null;
    try {
      return await this.send(method, path, body, headers);
    } finally {
      if (done) done();
    }
  }

  /* Like call(), but a later latest() or supersede() of the same kind makes
   * this one's answer, or failure, SUPERSEDED. The request itself still
   * completes (it is not aborted), so loading feedback stays truthful. */
  async latest(kind, method, path, body, headers) {
    const seq = (this.seqs.get(kind) || 0) + 1;
    this.seqs.set(kind, seq);
    try {
      const r = await this.call(method, path, body, headers);
      return this.seqs.get(kind) === seq ? r : SUPERSEDED;
    } catch (e) {
      if (this.seqs.get(kind) !== seq) return SUPERSEDED;
      throw e;
    }
  }

  /* Whatever of this kind is still on its way is no longer wanted. */
  supersede(kind) {
    this.seqs.set(kind, (this.seqs.get(kind) || 0) + 1);
  }

  /* The URL of a resource under the API, for links and downloads. */
  url(path) {
    return this.base + path;
  }

  async send(method, path, body, extraHeaders = {}) {
    const headers = { ...extraHeaders };
    if (method !== 'GET') headers['X-CSRF-Token'] = this.csrf || '';
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiError(0, 'unreachable', 'The server could not be reached.');
    }
    let data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (!response.ok) {
      // Web Access: {"error": {code, message}}; the Management API: {"error": "text"}
      const err = typeof (data && data.error) === 'string' ? { message: data.error } : (data && data.error) || {};
      const error = new ApiError(response.status, err.code || 'failed',
        err.message || response.statusText || 'HTTP ' + response.status);
      if (response.status === 401 && error.code === 'auth-failed' && this.onUnauthorized)
        this.onUnauthorized(error);
      throw error;
    }
    return data;
  }
}
