// A node.js HTTP server for the harness's server cases: it counts the requests it has
// answered (state a restored process must still have) and listens on the Unix socket
// path or the loopback HOST:PORT given as its first argument. With a second argument
// N it is a cluster: a primary and N workers sharing the listener, each worker
// counting its own requests and answering with its PID.
'use strict';
const cluster = require('cluster');
const http = require('http');

const where = process.argv[2];
const workers = Number(process.argv[3] || 0);
let hits = 0;

function serve() {
	const server = http.createServer((req, res) => {
		hits++;
		res.setHeader('Content-Type', 'text/plain');
		res.end(workers ? `worker ${process.pid} hits ${hits}\n` : `hits ${hits}\n`);
	});
	// HOST:PORT ([::1]:PORT for IPv6), or a path.
	const tcp = /^\[?([^\]]*)\]?:([0-9]+)$/.exec(where);

	if (tcp)
		server.listen(Number(tcp[2]), tcp[1]);
	else
		server.listen(where);
	return server;
}

if (workers && cluster.isPrimary) {
	let listening = 0;

	for (let i = 0; i < workers; i++)
		cluster.fork();
	cluster.on('listening', () => {
		if (++listening === workers)
			process.stdout.write('READY\n');
	});
} else {
	serve().on('listening', () => {
		if (!workers)
			process.stdout.write('READY\n');
	});
}
