// loopback-only.cjs is a Node preload (node --require) that makes every TCP
// server in the process listen on 127.0.0.1 only.
//
// kinesis-mock has no listen-host option and binds every interface; the
// emulators must never be reachable from other machines. scripts/emulators.sh
// loads this file before kinesis-local/main.js. Unix sockets and inherited
// handles pass through unchanged.
'use strict';

const net = require('net');

const HOST = '127.0.0.1';
const listen = net.Server.prototype.listen;

function isPort(v) {
  return typeof v === 'number' || (typeof v === 'string' && /^\d+$/.test(v));
}

net.Server.prototype.listen = function (...args) {
  const first = args[0];
  if (first !== null && typeof first === 'object' && !Array.isArray(first)) {
    // listen(options[, cb]): override only TCP listens (those without a path or handle).
    if (first.path === undefined && first.handle === undefined && first._handle === undefined && first.fd === undefined) {
      args[0] = { ...first, host: HOST, ipv6Only: false };
    }
  } else if (isPort(first) || first === undefined) {
    // listen([port[, host[, backlog]]][, cb])
    if (typeof args[1] === 'string') {
      args[1] = HOST;
    } else {
      args.splice(1, 0, HOST);
      if (first === undefined) args[0] = 0;
    }
  }
  return listen.apply(this, args);
};
