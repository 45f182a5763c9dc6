import { startSinkProcess } from './send-path-sink.ts';
import { rawPooledSmtp, rawRender, rawNewConnectionSmtp } from './send-path-raw-baselines.ts';
import { killAll } from './send-path-processes.ts';
const sink = await startSinkProcess();
console.log('sink', sink.port);
try {
  for (const mc of [5, 10, 20]) {
    const r = await rawPooledSmtp(sink, { tag: 'p' + mc, n: 10000, concurrency: 100, maxConnections: mc, timeLimitMs: 60000 });
    console.log('pooled', mc, r);
  }
  console.log('render', await rawRender({ tag: 'r', n: 5000, concurrency: 64, timeLimitMs: 60000 }));
  console.log('newconn', await rawNewConnectionSmtp(sink, { tag: 'n', n: 1000, concurrency: 20, timeLimitMs: 8000 }));
  console.log(await sink.stats());
} finally { await killAll(); }
