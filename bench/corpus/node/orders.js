'use strict';
// Order helpers with real bugs; crash.js calls them so bench/corpus/capture.py records the traces.

function customerId(order) {
  return order.customer.id;
}

function summarize(orders) {
  return orders.map((o) => customerId(o));
}

module.exports = { customerId, summarize };
