'use strict';
const { Client } = require('minicache');

function sessionStore(port) {
  // no 'error' listener on the cache client: a refused connection crashes the process
  return new Client(port);
}

module.exports = { sessionStore };
