// Shared by the scripts: the unmodified official CometD client under Node,
// one JSON object per stdout line for the Rust test to read.
import { CometD } from 'cometd';
import { adapt } from 'cometd-nodejs-client';

adapt();

export const TOKEN = 'demo-token';

export function out(event) {
    process.stdout.write(JSON.stringify(event) + '\n');
}

// Never outlive the test: every script ends on its own within this time.
export function deadline(ms) {
    setTimeout(() => {
        out({ event: 'timeout' });
        process.exit(2);
    }, ms);
}

// A client for `url` using `transport` ("websocket" or "long-polling").
export function client(url, transport, requestHeaders = {}) {
    const cometd = new CometD();
    cometd.configure({ url, requestHeaders, logLevel: 'warn', maxBackoff: 1000 });
    cometd.websocketEnabled = transport === 'websocket';
    return cometd;
}

export function finish(cometd, code = 0) {
    cometd.disconnect(() => {
        out({ event: 'disconnected' });
        process.exit(code);
    });
    // Disconnect replies are not guaranteed (e.g. the socket is gone).
    setTimeout(() => process.exit(code), 2000);
}
