import fs from 'node:fs';
import { startSinkProcess } from './send-path-sink.ts';
import { killAll } from './send-path-processes.ts';
import { ProcessSampler } from './send-path-process-sampler.ts';
import { Rig } from './send-path-rig.ts';
const dir = fs.mkdtempSync('/tmp/sp-rig-');
const sampler = new ProcessSampler().start();
const sink = await startSinkProcess();
try {
  const rig = await Rig.start({ dir, sink, sampler });
  const d = await rig.startStage('dispatcher', {});
  console.log(d.readyAt - d.spawnedAt, new Date(d.spawnedAt).toISOString());
  console.log(d.tail().split('\n').map(l => l.slice(0, 300)).join('\n'));
  await rig.close();
} finally { await killAll(); fs.rmSync(dir, { recursive: true, force: true }); }
