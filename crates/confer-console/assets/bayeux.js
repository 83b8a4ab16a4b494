// A small Bayeux 1.0 (CometD) client over long-polling, written for the console: handshake,
// subscribe, then a loop of `/meta/connect` requests that the server holds until it has
// notifications. It uses the acknowledge extension, so a connect lost on the way (a dropped
// connection) is answered again with what it carried; when the server no longer knows the session
// (it expired during a long outage, the server restarted), the client handshakes anew and calls
// `onSubscribed` again, where the page fetches its whole state: no update is ever lost, at worst
// one is seen twice (the page applies them idempotently).
//
// Every request is bounded by a timeout; failures are retried after a growing pause (capped),
// and at once when the browser says it is back online.

const BACKOFF_MS = [250, 500, 1000, 2000, 4000];
/** Handshake, subscribe and disconnect; a connect waits for the server's hold on top of this. */
const REQUEST_TIMEOUT_MS = 15000;
/** How long `stop` waits for the server to answer the held connect after the disconnect. */
const STOP_WAIT_MS = 2000;

/** The server refused the session for good (credentials gone): only signing in again helps. */
export class SessionEnded extends Error {
  constructor(message) {
    super(message);
    this.name = 'SessionEnded';
  }
}

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class Bayeux {
  /**
   * @param {object} options
   * @param {string} options.url the CometD endpoint, e.g. `/api/v2/notifications`
   * @param {string[]} options.channels the channels to subscribe to
   * @param {() => object} options.headers extra headers for every request (the CSRF token)
   * @param {(channel: string, data: any) => void} options.onMessage each notification, in order
   * @param {() => Promise<void>} options.onSubscribed after every handshake's subscriptions and
   *   before its first connect: the place to fetch the full state
   * @param {(status: string, detail?: string) => void} options.onStatus `connecting`,
   *   `connected`, `disconnected` (retrying by itself) or `ended` (see {@link SessionEnded})
   */
  constructor({ url, channels, headers, onMessage, onSubscribed, onStatus }) {
    this.url = url;
    this.channels = channels;
    this.headers = headers;
    this.onMessage = onMessage;
    this.onSubscribed = onSubscribed;
    this.onStatus = onStatus;
    this.running = false;
    this.clientId = null;
    this.acking = false;
    this.ack = null;
    this.needsSync = false;
    this.firstConnect = true;
    /** A request failed since the last successful connect. */
    this.recovering = false;
    this.advice = { timeout: 30000, interval: 0 };
    /** The AbortController of the held connect, if one is out. */
    this.held = null;
    /** The current connect's promise (for `stop`). */
    this.connecting = null;
    /** Ends the current pause early. */
    this.wake = null;
    this.onOffline = () => {
      // A held connect on a dead network would only end with a TCP timeout: fail it now, so the
      // banner shows at once and the retries start.
      this.held?.abort();
    };
    this.onOnline = () => this.wake?.();
  }

  start() {
    if (this.running) return;
    this.running = true;
    window.addEventListener('offline', this.onOffline);
    window.addEventListener('online', this.onOnline);
    this.onStatus('connecting');
    this.loop();
  }

  /** Ends the session (`/meta/disconnect`, which also answers the held connect). */
  async stop() {
    if (!this.running) return;
    this.running = false;
    window.removeEventListener('offline', this.onOffline);
    window.removeEventListener('online', this.onOnline);
    this.wake?.();
    const clientId = this.clientId;
    this.clientId = null;
    if (clientId !== null) {
      try {
        await this.send('disconnect', [{ channel: '/meta/disconnect', clientId }]);
      } catch {
        // The session expires on the server by itself.
      }
    }
    if (this.connecting) {
      const finished = await Promise.race([
        this.connecting.then(() => true, () => true),
        delay(STOP_WAIT_MS).then(() => false),
      ]);
      if (!finished) this.held?.abort();
    }
  }

  pause(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        if (self.wake === done) self.wake = null;
        resolve();
      }
      this.wake = done;
    });
  }

  async loop() {
    let failures = 0;
    while (this.running) {
      try {
        if (this.clientId === null) {
          await this.handshake();
          await this.subscribe();
          this.needsSync = true;
        }
        if (this.needsSync) {
          // Subscribed first, fetched second: whatever changes after the fetch's snapshot is
          // already queued for this session's first connect.
          await this.onSubscribed();
          this.needsSync = false;
        }
        this.connecting = this.connect();
        await this.connecting;
        failures = 0;
        this.recovering = false;
        if (this.running) this.onStatus('connected');
        if (this.running && this.advice.interval > 0) await this.pause(this.advice.interval);
      } catch (error) {
        if (!this.running) break;
        if (error instanceof SessionEnded) {
          this.running = false;
          window.removeEventListener('offline', this.onOffline);
          window.removeEventListener('online', this.onOnline);
          this.onStatus('ended', error.message);
          break;
        }
        failures += 1;
        this.recovering = true;
        this.onStatus('disconnected', String(error && error.message ? error.message : error));
        await this.pause(BACKOFF_MS[Math.min(failures, BACKOFF_MS.length) - 1]);
      } finally {
        this.connecting = null;
      }
    }
  }

  adopt(advice) {
    if (!advice) return;
    if (typeof advice.timeout === 'number') this.advice.timeout = advice.timeout;
    if (typeof advice.interval === 'number') this.advice.interval = advice.interval;
  }

  async handshake() {
    this.clientId = null;
    this.ack = null;
    this.firstConnect = true;
    const replies = await this.send('handshake', [
      {
        channel: '/meta/handshake',
        version: '1.0',
        minimumVersion: '1.0',
        supportedConnectionTypes: ['long-polling'],
        ext: { ack: true },
      },
    ]);
    const reply = replies.find((message) => message.channel === '/meta/handshake');
    if (!reply) throw new Error('the server did not answer the handshake');
    if (!reply.successful) {
      const why = reply.error || 'the handshake was refused';
      // `none`: GWS refuses the session itself (403::access_denied, invalid CSRF token).
      if (reply.advice && reply.advice.reconnect === 'none') throw new SessionEnded(why);
      throw new Error(why);
    }
    this.clientId = reply.clientId;
    this.acking = Boolean(reply.ext && reply.ext.ack === true);
    this.adopt(reply.advice);
  }

  async subscribe() {
    const replies = await this.send(
      'subscribe',
      this.channels.map((subscription) => ({
        channel: '/meta/subscribe',
        clientId: this.clientId,
        subscription,
      })),
    );
    for (const channel of this.channels) {
      const reply = replies.find(
        (message) => message.channel === '/meta/subscribe' && message.subscription === channel,
      );
      if (!reply || !reply.successful) {
        if (reply && reply.advice && reply.advice.reconnect === 'handshake') this.clientId = null;
        throw new Error((reply && reply.error) || `subscribing to ${channel} failed`);
      }
    }
  }

  async connect() {
    const message = {
      channel: '/meta/connect',
      clientId: this.clientId,
      connectionType: 'long-polling',
    };
    // The first connect is answered at once (it only establishes the session), and so is the
    // first one after a failure: the page learns at once that it is live again (and gets what it
    // missed), instead of when the server's hold ends.
    if (this.firstConnect || this.recovering) message.advice = { timeout: 0 };
    if (this.acking && this.ack !== null) message.ext = { ack: this.ack };
    const controller = new AbortController();
    this.held = controller;
    let replies;
    try {
      replies = await this.send('connect', [message], this.advice.timeout + REQUEST_TIMEOUT_MS, controller);
    } finally {
      if (this.held === controller) this.held = null;
    }
    const reply = replies.find((m) => m.channel === '/meta/connect');
    if (!reply) throw new Error('the server did not answer the connect');
    this.adopt(reply.advice);
    if (!reply.successful) {
      const reconnect = reply.advice && reply.advice.reconnect;
      // `handshake` (the session expired or is unknown here) and `none` (the server ended it,
      // as a restarting node does) both need a new session; a refused handshake is what ends.
      if (reconnect === 'handshake' || reconnect === 'none' || !reconnect) this.clientId = null;
      throw new Error(reply.error || 'the connect failed');
    }
    if (!this.running) return;
    this.firstConnect = false;
    for (const delivered of replies) {
      if (delivered.channel && !delivered.channel.startsWith('/meta/') && 'data' in delivered) {
        try {
          this.onMessage(delivered.channel, delivered.data);
        } catch (error) {
          // A page bug must not make the session replay the same batch forever: report, go on.
          console.error('handling a notification failed', error);
        }
      }
    }
    // Acknowledged with the next connect, after the messages were handled.
    if (this.acking && reply.ext && typeof reply.ext.ack === 'number') this.ack = reply.ext.ack;
  }

  async send(type, messages, timeoutMs = REQUEST_TIMEOUT_MS, controller = new AbortController()) {
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const response = await fetch(`${this.url}/${type}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json;charset=UTF-8', ...this.headers() },
        body: JSON.stringify(messages),
        credentials: 'same-origin',
        cache: 'no-store',
        signal: controller.signal,
      });
      let replies = null;
      try {
        replies = await response.json();
      } catch {
        // Reported below.
      }
      if (!Array.isArray(replies)) {
        throw new Error(`the server answered HTTP ${response.status} without Bayeux messages`);
      }
      return replies;
    } finally {
      clearTimeout(timer);
    }
  }
}
