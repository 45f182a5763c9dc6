import fs from 'node:fs';
import { startSinkProcess } from './send-path-sink.ts';
import { killAll } from './send-path-processes.ts';
import { ProcessSampler, formatUsage } from './send-path-process-sampler.ts';
import { Rig } from './send-path-rig.ts';
import { renderStage, dispatchStage } from './send-path-stages.ts';
const dir = fs.mkdtempSync('/tmp/sp-rig-');
const sampler = new ProcessSampler().start();
const sink = await startSinkProcess();
sampler.watch('sink', sink.pid);
const sig = new AbortController().signal;
try {
  const t0 = Date.now();
  const rig = await Rig.start({ dir, sink, sampler });
  console.log('rig up', Date.now() - t0);
  for (let run = 0; run < 2; run++) {
    const n = 10000;
    let w = sampler.window();
    let t = Date.now();
    const r = await renderStage(rig, 'r' + run, n, 120000, sig);
    console.log('render', r, 'total ms', Date.now() - t, formatUsage(w.close()));
    const env = process.argv[2] ? JSON.parse(process.argv[2]) : {};
    w = sampler.window(); t = Date.now();
    const d = await dispatchStage(rig, sink, n, env, 120000, sig); console.log("stop+", Date.now() - t - d.seconds*1000 - d.startupMs); console.log(rig.lastLines.get("dispatcher").split("\n").filter(l=>l.includes("recent")).join("\n"));
    console.log('dispatch', d, 'total ms', Date.now() - t, formatUsage(w.close()));
  }
  await rig.close();
} finally { await killAll(); fs.rmSync(dir, { recursive: true, force: true }); }
