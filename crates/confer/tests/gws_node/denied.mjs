// node denied.mjs <url> <websocket|long-polling> <auth json>
// A handshake the server refuses: 403 with reconnect "none", so the client gives up by itself.
import { out, deadline, client } from './common.mjs';

const [url, transport, authJson] = process.argv.slice(2);
deadline(20000);

const cometd = client(url, transport, JSON.parse(authJson));
let handshakes = 0;
cometd.addListener('/meta/handshake', (m) => {
    handshakes += 1;
    out({ event: 'handshake', successful: m.successful, error: m.error, reconnect: m.advice && m.advice.reconnect });
});
cometd.handshake();
// Wait a while to show there is no retry, then report.
setTimeout(() => {
    out({ event: 'done', handshakes, status: cometd.getStatus() });
    process.exit(0);
}, 3000);
