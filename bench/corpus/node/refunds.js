'use strict';

async function refund(orderId) {
  if (orderId > 0) {
    throw new Error(`refund window closed for order ${orderId}`);
  }
}

function refundLater(orderId) {
  setTimeout(() => refund(orderId), 1);
}

module.exports = { refundLater };
