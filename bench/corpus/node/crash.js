'use strict';
// node crash.js CASE VALUE: runs one bug; node prints the error to stderr as it would in production.
const net = require('net');
const orders = require('./orders');
const invoices = require('./invoices');
const refunds = require('./refunds');
const webhooks = require('./webhooks');
const broker = require('./broker');
const body = require('./body');
const shipping = require('./shipping');
const coupons = require('./coupons');
const sessions = require('./sessions');
const assistant = require('./assistant');
const http = require('http');

function closedPort(cb) {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1', () => {
    const { port } = srv.address();
    srv.close(() => cb(port));
  });
}

function silentServer(cb) {
  const srv = net.createServer(() => {});
  srv.listen(0, '127.0.0.1', () => cb(srv.address().port, srv));
}

const [kind, raw] = process.argv.slice(2);
const n = Number(raw);
if (kind === 'uncaught_type') {
  orders.summarize([{ id: n, customer: { id: 1 } }, { id: n + 1 }]);
} else if (kind === 'cause') {
  invoices.loadInvoice(n).catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
} else if (kind === 'unhandled_rejection') {
  refunds.refundLater(n);
} else if (kind === 'aggregate') {
  closedPort((port) => webhooks.deliver(port, n));
} else if (kind === 'econnrefused') {
  closedPort((port) => broker.connectBroker(port));
} else if (kind === 'json_body') {
  body.handleCreate(`{"items": [${n}, ${n + 1}] "note": "x"}`);
} else if (kind === 'rejection_reason') {
  coupons.redeem(`C${n}`);
} else if (kind === 'cache') {
  closedPort((port) => sessions.sessionStore(port));
} else if (kind === 'provider_overloaded') {
  const body = '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}';
  const srv = http.createServer((req, res) => res.writeHead(529, { 'content-type': 'application/json' }).end(body));
  srv.listen(0, '127.0.0.1', () => {
    assistant.summarizeTicket(`http://127.0.0.1:${srv.address().port}`, n).catch((err) => {
      console.error(err);
      process.exit(1);
    });
  });
} else if (kind === 'timeout') {
  silentServer((port, srv) => {
    shipping.quoteShipping(port, n).catch((err) => {
      console.error(err);
      srv.close();
      process.exit(1);
    });
  });
}
