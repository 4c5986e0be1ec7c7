'use strict';

function redeem(code) {
  // rejects with a plain string, not an Error: node prints ERR_UNHANDLED_REJECTION
  return Promise.reject(`coupon ${code} already redeemed`);
}

module.exports = { redeem };
