// Shared by the scripts: the unmodified official CometD client under Node, authenticated the
// way a GWS desktop authenticates, printing one JSON object per stdout line for the Rust test.
import * as ws from 'ws';
import { CometD, AckExtension } from 'cometd';
import { adapt } from 'cometd-nodejs-client';

adapt();

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

// `auth` is {"basic": "user:password"} or {"cookie": "JSESSIONID=...", "csrf": "<token>"}.
// Long-polling sends these headers on every request. A Node WebSocket sends no cookie and no
// custom header by itself (the adapter's window.WebSocket is the `ws` package), so, as a Node
// desktop does, window.WebSocket is replaced after adapt() by a subclass passing them on the
// upgrade request.
export function client(url, transport, auth) {
    const headers = {};
    if (auth.basic) {
        headers['Authorization'] = 'Basic ' + Buffer.from(auth.basic).toString('base64');
    }
    if (auth.cookie) {
        headers['Cookie'] = auth.cookie;
    }
    if (auth.csrf) {
        headers['X-CSRF-TOKEN'] = auth.csrf;
    }
    global.window.WebSocket = class extends ws.WebSocket {
        constructor(address, protocols) {
            super(address, protocols, { headers });
        }
    };
    const cometd = new CometD();
    cometd.configure({ url, requestHeaders: headers, logLevel: 'warn', maxBackoff: 1000 });
    cometd.websocketEnabled = transport === 'websocket';
    // The acknowledge extension: a reconnecting client receives what it missed, once, in order.
    cometd.registerExtension('ack', new AckExtension());
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
