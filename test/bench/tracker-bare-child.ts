/**
 * The tracker bench's baseline: a bare Fastify app answering a 302 and a 43-byte GIF with
 * nothing else (no token, no events), in its own process like the tracker. Prints its port.
 */
import Fastify from 'fastify';
import { PIXEL_GIF } from '../../services/tracker/app.js';

const app = Fastify({ logger: false, routerOptions: { maxParamLength: 1032 } });
app.get('/c/:token', (_req, reply) => reply.code(302).header('location', 'https://shop.example/landing').header('cache-control', 'no-store').send());
app.get('/o/:file', (_req, reply) => reply.header('content-type', 'image/gif').header('cache-control', 'no-store').send(PIXEL_GIF));
const address = await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`${JSON.stringify({ msg: 'bare ready', address })}\n`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
