'use strict';

function parseUpstream(text) {
  return JSON.parse(text);
}

async function loadInvoice(id) {
  const body = `<html><body>502 Bad Gateway ${id}</body></html>`;
  try {
    return parseUpstream(body);
  } catch (err) {
    throw new Error(`billing service returned an unreadable invoice ${id}`, { cause: err });
  }
}

module.exports = { loadInvoice };
