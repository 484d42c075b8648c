/* console-api: the Console's one way to the Management API, through the
 * shared ApiClient (api.js): POST /api/invoke/FUNCTION with a JSON object of
 * arguments, the session cookie, and the CSRF token in X-CSRF-Token.
 *
 *   const r = await invoke('GetServiceStatus', {}, { kind: 'status', background: true });
 *   if (r === SUPERSEDED) return;   // a newer request of that kind was sent
 *
 * kind: answers of older requests of the same kind are dropped (SUPERSEDED).
 * background: the request is not the administrator at work (polling), so it
 * does not keep the session from ending when idle.
 * A 401 means the session has ended: onSessionEnded() is called, and the
 * call fails with an ApiError like any other failure (an envelope's error
 * too). */
import { ApiClient, ApiError, SUPERSEDED } from './api.js';

export { ApiError, SUPERSEDED };

const CSRF_KEY = 'coffer.console.csrf';
let onEnded = null;

export const client = new ApiClient({ base: '/api/invoke/' });

export function configure({ onRequest, onSessionEnded }) {
  client.onRequest = onRequest;
  onEnded = onSessionEnded;
}

/* The CSRF token lives in this tab's sessionStorage, so a reload keeps the
 * session; it goes when the tab does. */
export function setCsrf(token) {
  client.csrf = token;
  if (token) sessionStorage.setItem(CSRF_KEY, token);
  else sessionStorage.removeItem(CSRF_KEY);
}

export function storedCsrf() {
  return sessionStorage.getItem(CSRF_KEY);
}

export async function invoke(fn, args = {}, { kind = null, background = false } = {}) {
  const headers = background ? { 'X-Coffer-Background': '1' } : {};
  let envelope;
  try {
    envelope = kind ? await client.latest(kind, 'POST', fn, args, headers)
      : await client.call('POST', fn, args, headers);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401 && onEnded) onEnded(e);
    throw e;
  }
  if (envelope === SUPERSEDED) return SUPERSEDED;
  if (envelope && envelope.error) {
    const message = typeof envelope.error === 'string' ? envelope.error : envelope.error.message;
    throw new ApiError(200, 'failed', message);
  }
  return envelope ? envelope.result : null;
}

function basic(user, password) {
  const bytes = new TextEncoder().encode(user + ':' + password);
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return 'Basic ' + btoa(s);
}

/* CreateConsoleSession with the administrator's password (and code):
 * { ok: true, session } | { ok: false, mfa: true } (the code is needed)
 * | { ok: false, error }. */
export async function createSession(user, password, code) {
  const headers = { 'Authorization': basic(user, password), 'X-Coffer-Console': '1' };
  if (code) headers['X-Coffer-TOTP'] = code;
  let response;
  try {
    response = await fetch('/api/invoke/CreateConsoleSession', {
      method: 'POST', headers, credentials: 'same-origin', cache: 'no-store',
    });
  } catch (e) {
    return { ok: false, error: 'The server could not be reached.' };
  }
  let data = null;
  try {
    data = await response.json();
  } catch (e) {
    data = null;
  }
  const message = data && data.error ? (typeof data.error === 'string' ? data.error : data.error.message) : null;
  if (response.ok && data && !data.error) return { ok: true, session: data.result };
  if (response.status === 401 && response.headers.get('X-Coffer-MFA') === 'required')
    return { ok: false, mfa: true };
  return { ok: false, error: message || 'Sign-in failed (HTTP ' + response.status + ').' };
}

/* A function whose work may outlast the request: answers with a token and
 * statusCode "running" after 5 s (or at once when long-running); then
 * /api/get-status is long-polled until it ends. onProgress(envelope) sees
 * every state on the way. Resolves to the result, or fails with the job's
 * error. */
export async function runJob(fn, args = {}, onProgress = () => {}) {
  let envelope;
  try {
    envelope = await client.call('POST', fn, args);
    while (envelope && envelope.statusCode === 'running' && envelope.token) {
      onProgress(envelope);
      envelope = await client.call('POST', '../get-status', { token: envelope.token,
        lastKnownStatusVersion: envelope.statusVersion, millisecondsTimeout: 20000 });
    }
  } catch (e) {
    if (e instanceof ApiError && e.status === 401 && onEnded) onEnded(e);
    throw e;
  }
  onProgress(envelope);
  if (envelope && envelope.error) {
    const message = typeof envelope.error === 'string' ? envelope.error : envelope.error.message;
    throw new ApiError(200, 'failed', message);
  }
  return envelope ? envelope.result : null;
}
