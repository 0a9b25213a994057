// A node.js HTTP server for the harness's server cases: it counts the requests it has
// answered (state a restored process must still have) and listens on the Unix socket
// path or the loopback HOST:PORT given as its argument.
'use strict';
const http = require('http');

const where = process.argv[2];
let hits = 0;

const server = http.createServer((req, res) => {
	hits++;
	res.setHeader('Content-Type', 'text/plain');
	res.end(`hits ${hits}\n`);
});

function ready() {
	process.stdout.write('READY\n');
}

// HOST:PORT ([::1]:PORT for IPv6), or a path.
const tcp = /^\[?([^\]]*)\]?:([0-9]+)$/.exec(where);
if (tcp)
	server.listen(Number(tcp[2]), tcp[1], ready);
else
	server.listen(where, ready);
