// node denied.mjs <url> <websocket|long-polling>
// A handshake with a wrong token: the server says 403 and reconnect "none",
// so the client must give up on its own (no retry loop).
import { out, deadline, client } from './common.mjs';

const [url, transport] = process.argv.slice(2);
deadline(20000);

const cometd = client(url, transport);
let handshakes = 0;
cometd.addListener('/meta/handshake', (m) => {
    handshakes += 1;
    out({ event: 'handshake', successful: m.successful, error: m.error, reconnect: m.advice && m.advice.reconnect });
});
cometd.handshake({ ext: { token: 'wrong', user: 'mallory' } });
// Wait a while to prove there is no retry, then report.
setTimeout(() => {
    out({ event: 'done', handshakes, status: cometd.getStatus() });
    process.exit(0);
}, 3000);
