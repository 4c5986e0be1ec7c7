'use strict';

function readOrder(raw) {
  const body = JSON.parse(raw);
  return body.items;
}

function handleCreate(raw) {
  try {
    return readOrder(raw);
  } catch (err) {
    console.error(err);
    process.exitCode = 1;
  }
}

module.exports = { handleCreate };
