// The Node side of config/netguard.py: loaded with NODE_OPTIONS=--require into n8n and every process it
// starts (its task runners too), it refuses any connection that is not to a loopback address, so a test
// with a real n8n sends nothing off this machine even when a refusal under test is broken.
'use strict';
const net = require('net');
const dns = require('dns');

const LOOPBACK_NAMES = new Set(['localhost', 'localhost.']);

function isLoopback(host) {
  if (host === undefined || host === null || host === '') return true; // Node's default: localhost
  const bare = String(host).replace(/^\[|\]$/g, '').split('%')[0];
  if (LOOPBACK_NAMES.has(bare.toLowerCase())) return true;
  if (net.isIPv4(bare)) return bare.startsWith('127.');
  if (net.isIPv6(bare)) return bare === '::1' || /^::ffff:127\./i.test(bare);
  return false; // any other name would need a lookup that may leave the machine
}

function refusal(host) {
  const error = new Error(`LOOPBACK_ONLY: refused connection to ${host}`);
  error.code = 'ECONNREFUSED';
  return error;
}

const originalConnect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(...args) {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  const isPath = typeof first === 'string' && !/^\d+$/.test(first);
  const options = typeof first === 'object' && first !== null ? first : null;
  const host = options ? options.host : (typeof args[1] === 'string' ? args[1] : undefined);
  if (!isPath && !(options && options.path) && !isLoopback(host)) {
    process.nextTick(() => this.destroy(refusal(host)));
    return this;
  }
  return originalConnect.apply(this, args);
};

const originalLookup = dns.lookup;
dns.lookup = function guardedLookup(hostname, ...rest) {
  const callback = rest[rest.length - 1];
  if (!isLoopback(hostname)) {
    process.nextTick(() => callback(refusal(hostname)));
    return {};
  }
  return originalLookup.call(this, hostname, ...rest);
};
