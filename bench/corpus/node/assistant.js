'use strict';

class APIError extends Error {
  constructor(status, body) {
    super(`${status} ${body}`);
    this.name = 'APIError';
    this.status = status;
  }
}

async function summarizeTicket(baseUrl, ticketId) {
  const res = await fetch(`${baseUrl}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'model-small', messages: [{ role: 'user', content: `ticket ${ticketId}` }] }),
  });
  if (!res.ok) {
    throw new APIError(res.status, await res.text());
  }
  return res.json();
}

module.exports = { summarizeTicket, APIError };
