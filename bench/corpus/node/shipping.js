'use strict';

async function quoteShipping(port, zip) {
  const res = await fetch(`http://127.0.0.1:${port}/quote?zip=${zip}`, {
    signal: AbortSignal.timeout(200),
  });
  return res.json();
}

module.exports = { quoteShipping };
