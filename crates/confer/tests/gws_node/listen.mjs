// node listen.mjs <url> <websocket|long-polling> <auth json> <messages to wait for>
// Handshakes, subscribes to /v2/me/*, prints every message and every /meta/connect outcome
// after subscribing, and disconnects once it has received the given number of messages.
import { out, deadline, client, finish } from './common.mjs';

const [url, transport, authJson, expected] = process.argv.slice(2);
deadline(60000);

const cometd = client(url, transport, JSON.parse(authJson));
const wanted = Number(expected);
let received = 0;
let ready = false;
cometd.addListener('/meta/connect', (m) => {
    if (ready) {
        out({ event: 'connect', successful: m.successful });
    }
});
cometd.handshake((reply) => {
    out({
        event: 'handshake',
        successful: reply.successful,
        error: reply.error,
        transport: cometd.getTransport() && cometd.getTransport().type,
        ack: reply.ext && reply.ext.ack,
    });
    if (!reply.successful) {
        process.exit(1);
    }
    cometd.subscribe('/v2/me/*', (m) => {
        out({ event: 'message', channel: m.channel, data: m.data });
        received += 1;
        if (received >= wanted) {
            finish(cometd);
        }
    }, (r) => {
        out({ event: 'subscribed', successful: r.successful, error: r.error });
        ready = true;
    });
});
