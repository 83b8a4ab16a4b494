// node ack_reconnect.mjs <url> <websocket|long-polling> <ack|noack>
// Subscribes to /chat/* and prints every message and every /meta/connect
// outcome, so the test can cut the connection and see what arrives after.
import { AckExtension } from 'cometd';
import { out, deadline, client, finish, TOKEN } from './common.mjs';

const [url, transport, mode] = process.argv.slice(2);
deadline(45000);

const cometd = client(url, transport);
if (mode === 'ack') {
    cometd.registerExtension('ack', new AckExtension());
}
let ready = false;
cometd.addListener('/meta/connect', (m) => {
    if (ready) {
        out({ event: 'connect', successful: m.successful });
    }
});
cometd.handshake({ ext: { token: TOKEN, user: 'alice' } }, (reply) => {
    out({ event: 'handshake', successful: reply.successful, transport: cometd.getTransport().type, ack: reply.ext && reply.ext.ack });
    if (!reply.successful) {
        process.exit(1);
    }
    cometd.subscribe('/chat/*', (m) => {
        out({ event: 'message', channel: m.channel, data: m.data });
        if (m.data && m.data.end) {
            finish(cometd);
        }
    }, (r) => {
        out({ event: 'subscribed', successful: r.successful });
        ready = true;
    });
});
