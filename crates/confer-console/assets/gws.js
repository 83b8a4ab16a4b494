// The GWS REST API as the console uses it, exactly like any GWS client: sign in once with HTTP
// Basic (`GET /api/v2/me`), after which the browser holds the `JSESSIONID` cookie (HttpOnly: this
// code never sees it) and every reply to a GET carries the CSRF token in `X-CSRF-TOKEN`, which
// every POST must send back.

/** A request the server refused (or could not be sent): `statusMessage` is what to show. */
export class GwsError extends Error {
  constructor(httpStatus, statusCode, message) {
    super(message);
    this.name = 'GwsError';
    /** HTTP status, 0 when the server could not be reached. */
    this.httpStatus = httpStatus;
    /** GWS `statusCode`, null when the reply was not GWS JSON. */
    this.statusCode = statusCode;
  }

  /** The session is gone (expired, forged, or never there): sign in again. */
  get signedOut() {
    return this.httpStatus === 401 || this.statusCode === 20;
  }
}

/** `Basic` credentials; the user name and password may be any Unicode (sent as UTF-8). */
function basic(username, password) {
  const bytes = new TextEncoder().encode(`${username}:${password}`);
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return `Basic ${btoa(binary)}`;
}

/** 128 random bits as hex: an `Idempotency-Key` (crypto.randomUUID needs a secure context). */
export function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

const TIMEOUT_MS = 15000;

export class Gws {
  constructor(base = '/api/v2') {
    this.base = base;
    /** The session's CSRF token, from the last GET reply. */
    this.csrf = null;
  }

  /** Signs in with a user name and password; resolves to the GWS user. */
  async signIn(username, password) {
    const reply = await this.request('GET', '/me', { authorization: basic(username, password) });
    return reply.user;
  }

  /** The user of the browser's current session cookie (and its CSRF token). */
  async resume() {
    const reply = await this.request('GET', '/me');
    return reply.user;
  }

  get(path) {
    return this.request('GET', path);
  }

  /** A GWS operation; `idempotencyKey` makes a retry of the same click safe. */
  post(path, body, idempotencyKey = randomKey()) {
    return this.request('POST', path, { body, idempotencyKey });
  }

  async request(method, path, { body, authorization, idempotencyKey } = {}) {
    const headers = { Accept: 'application/json' };
    if (authorization) headers.Authorization = authorization;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET' && this.csrf) headers['X-CSRF-TOKEN'] = this.csrf;
    if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    let response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
        cache: 'no-store',
        signal: controller.signal,
      });
    } catch {
      throw new GwsError(0, null, 'The server could not be reached. Try again.');
    } finally {
      clearTimeout(timer);
    }
    const token = response.headers.get('X-CSRF-TOKEN');
    if (token) this.csrf = token;
    let reply = null;
    try {
      reply = await response.json();
    } catch {
      // Not JSON (a proxy's error page, say): reported below with the HTTP status.
    }
    const statusCode = reply && typeof reply.statusCode === 'number' ? reply.statusCode : null;
    if (!response.ok || statusCode !== 0) {
      const message =
        (reply && typeof reply.statusMessage === 'string' && reply.statusMessage) ||
        `The server answered HTTP ${response.status}.`;
      throw new GwsError(response.status, statusCode, message);
    }
    return reply;
  }
}
