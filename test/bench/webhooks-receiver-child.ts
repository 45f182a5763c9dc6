/**
 * The webhook bench's receiver, in a process of its own (as a customer's server would be): a
 * bare node:http server on 127.0.0.1 answering every POST 200 after reading its body. Prints
 * its port as one JSON line.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' }).end('{}'));
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`));
process.on('disconnect', () => process.exit(0));
