'use strict';
const net = require('net');

function connectBroker(port) {
  const sock = net.connect(port, '127.0.0.1');
  sock.on('connect', () => sock.write('PING\r\n'));
  return sock;
}

module.exports = { connectBroker };
