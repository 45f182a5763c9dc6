/**
 * What a settled `npm start` costs at rest, per process and per thread: starts the real
 * `postline start` (free ports, a temporary data directory, relay = an SMTP sink), waits
 * `settle` seconds after "Postline is running", then reads every process's CPU time from
 * /proc over `window` seconds (threads included: V8's GC helpers, chDB's pools):
 *
 *   node --import tsx test/bench/settled-idle.ts [settleSeconds=30] [windowSeconds=60]
 *
 * The embedded suite's idle row opens 5 s after start-up, while start-up work is still
 * winding down; this is the figure a machine left running sees. Linux only (/proc).
 */
import fs from 'node:fs';
import { startSmtpSink } from '../helpers/smtp-sink.js';
import { descendants, processLabel, pssMb, startLauncher } from './embedded-launcher.js';

const settleS = Number(process.argv[2] ?? 30);
const windowS = Number(process.argv[3] ?? 60);
const HZ = 100; // USER_HZ: /proc's clock ticks per second on Linux

/** utime + stime of a process or thread, in ticks (fields 14 and 15 of its stat line). */
function ticks(statPath: string): number {
  const fields = fs.readFileSync(statPath, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function threadTicks(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    out.set(`${tid} ${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))}`, ticks(`/proc/${pid}/task/${tid}/stat`));
  }
  return out;
}

const sink = await startSmtpSink({ greetingDelay: false });
const launcher = await startLauncher({ relay: sink });
try {
  await new Promise((r) => setTimeout(r, settleS * 1000));
  const pids = [launcher.pid, ...descendants(launcher.pid)];
  const before = pids.map((p) => ({ total: ticks(`/proc/${p}/stat`), threads: threadTicks(p) }));
  await new Promise((r) => setTimeout(r, windowS * 1000));
  let total = 0;
  let pss = 0;
  for (const [i, pid] of pids.entries()) {
    const pct = ((ticks(`/proc/${pid}/stat`) - before[i].total) / HZ / windowS) * 100;
    const mb = pssMb(pid);
    total += pct;
    pss += mb;
    const busiest = [...threadTicks(pid)]
      .map(([name, t]) => [name.split(' ').slice(1).join(' '), t - (before[i].threads.get(name) ?? 0)] as const)
      .filter(([, d]) => d > 0)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5)
      .map(([name, d]) => `${name} ${((d / HZ / windowS) * 100).toFixed(2)} %`);
    console.log(`${pct.toFixed(2).padStart(6)} % of a core  ${mb.toFixed(0).padStart(4)} MB PSS  ${processLabel(pid)}  (threads: ${busiest.join(', ') || 'none'})`);
  }
  console.log(`${total.toFixed(2).padStart(6)} % of a core  ${pss.toFixed(0).padStart(4)} MB PSS  all processes, ${windowS} s from ${settleS} s after start-up`);
} finally {
  await launcher.stop();
  await sink.close();
}
