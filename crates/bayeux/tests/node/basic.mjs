// node basic.mjs <url> <websocket|long-polling>
// Handshake, subscribe (a wildcard and a plain channel), publish, receive.
// Prints: handshake, subscribed, published, denied..., message..., disconnected.
import { out, deadline, client, finish, TOKEN } from './common.mjs';

const [url, transport] = process.argv.slice(2);
deadline(30000);

// Long-polling carries the token in a header; a Node WebSocket cannot send
// custom headers, so there it travels in the handshake's ext.
const headers = transport === 'long-polling' ? { Authorization: `Bearer ${TOKEN}` } : {};
const ext = transport === 'long-polling' ? { user: 'alice' } : { token: TOKEN, user: 'alice' };
const cometd = client(url, transport, headers);

function onMessage(m) {
    out({ event: 'message', channel: m.channel, data: m.data });
    if (m.data && m.data.end) {
        finish(cometd);
    }
}

cometd.handshake({ ext }, (reply) => {
    out({ event: 'handshake', successful: reply.successful, transport: cometd.getTransport().type, error: reply.error });
    if (!reply.successful) {
        process.exit(1);
    }
    let pending = 2;
    const subscribed = (r) => {
        if (!r.successful) {
            out({ event: 'subscribe_failed', error: r.error, reply: r });
            process.exit(1);
        }
        if (--pending === 0) {
            out({ event: 'subscribed' });
            cometd.subscribe('/secret/plans', onMessage, (r) => {
                out({ event: 'denied', what: 'subscribe', successful: r.successful, error: r.error });
                cometd.publish('/news', { from: 'node' }, (p) => {
                    out({ event: 'denied', what: 'publish', successful: p.successful, error: p.error });
                    cometd.publish('/chat/node', { from: 'node' }, (p) => {
                        out({ event: 'published', successful: p.successful });
                    });
                });
            });
        }
    };
    cometd.batch(() => {
        cometd.subscribe('/chat/*', onMessage, subscribed);
        cometd.subscribe('/v2/me/calls', onMessage, subscribed);
    });
});
