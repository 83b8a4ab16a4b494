// The CometD project's Node.js server (npm cometd-nodejs-server), stock except for the
// held-connect timeout, set to the 30 s every server of the comparison uses. It serves
// long-polling only (the package has no WebSocket transport). Clients may publish to any
// channel (the default policy allows it). Prints `listening http://127.0.0.1:PORT/cometd`.
'use strict';
const http = require('http');
const cometd = require('cometd-nodejs-server');

const server = cometd.createCometDServer({ timeout: 30000, logLevel: 'info' });
const httpServer = http.createServer(server.handle);
// Node's own request timeout must exceed the held connect (the package's README says so).
httpServer.timeout = 120000;
httpServer.keepAliveTimeout = 120000;
httpServer.listen(0, '127.0.0.1', () => {
  console.log(`listening http://127.0.0.1:${httpServer.address().port}/cometd`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
