'use strict';
const http = require('http');

// The hooks host resolves to both loopback families, as a dual-stack DNS name would, so a
// refused connection surfaces as node's happy-eyeballs AggregateError.
function dualStack(host, opts, cb) {
  cb(null, [{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }]);
}

function deliver(port, id) {
  // no 'error' listener: a refused connection becomes an unhandled 'error' event
  http.get({ host: 'hooks.internal', port, path: `/hooks/${id}`, lookup: dualStack, autoSelectFamily: true });
}

module.exports = { deliver };
