// node rules.mjs <url> <websocket|long-polling> <auth json>
// After a good handshake: a channel outside /v2/me is refused, publishing is refused (also to
// the client's own /v2/me/calls), /v2/me/* is allowed.
import { out, deadline, client, finish } from './common.mjs';

const [url, transport, authJson] = process.argv.slice(2);
deadline(30000);

const cometd = client(url, transport, JSON.parse(authJson));
cometd.handshake((reply) => {
    out({ event: 'handshake', successful: reply.successful, transport: cometd.getTransport().type });
    if (!reply.successful) {
        process.exit(1);
    }
    cometd.subscribe('/v2/users', () => {}, (r) => {
        out({ event: 'subscribe', channel: '/v2/users', successful: r.successful, error: r.error });
        cometd.publish('/v2/me/calls', { forged: true }, (p) => {
            out({ event: 'publish', channel: '/v2/me/calls', successful: p.successful, error: p.error });
            cometd.subscribe('/v2/me/*', () => {}, (s) => {
                out({ event: 'subscribe', channel: '/v2/me/*', successful: s.successful });
                finish(cometd);
            });
        });
    });
});
