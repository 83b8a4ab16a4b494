// Faye (npm faye), stock except for the held-connect timeout, set to the 30 s every
// server of the comparison uses. Serves websocket and long-polling at /cometd; clients may
// publish to any channel (no extension refuses it). Prints
// `listening http://127.0.0.1:PORT/cometd`.
'use strict';
const http = require('http');
const faye = require('faye');

const bayeux = new faye.NodeAdapter({ mount: '/cometd', timeout: 30 });
const httpServer = http.createServer();
bayeux.attach(httpServer);
httpServer.timeout = 120000;
httpServer.keepAliveTimeout = 120000;
httpServer.listen(0, '127.0.0.1', () => {
  console.log(`listening http://127.0.0.1:${httpServer.address().port}/cometd`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
