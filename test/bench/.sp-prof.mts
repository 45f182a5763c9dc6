import fs from 'node:fs';
import path from 'node:path';
import { summarizeProfile } from './cpu-profile-summary.ts';
const [file] = process.argv.slice(2);
const s = summarizeProfile(file, 400);
const busy = s.totalMs * (1 - s.idleShare);
const pkg = new Map<string, number>();
for (const f of s.files) {
  let k = f.name;
  if (k.startsWith('node:')) k = 'node internals (' + (k.includes('stream') ? 'streams' : k.includes('crypto') ? 'crypto' : k.includes('domexception') || k.includes('abort') ? 'DOMException/AbortSignal' : 'other') + ')';
  else if (!k.includes('/')) k = k.startsWith('(') ? k : 'native: ' + k;
  else if (/^(services|shared)\//.test(k)) k = k.split('/').slice(0, 2).join('/');
  else k = k.startsWith('@') ? k.split('/').slice(0, 2).join('/') : k.split('/')[0];
  pkg.set(k, (pkg.get(k) ?? 0) + f.selfMs);
}
console.log(path.basename(file), 'busy ms', busy.toFixed(0), 'of', s.totalMs.toFixed(0));
for (const [k, ms] of [...pkg].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(((ms / busy) * 100).toFixed(1).padStart(5) + '%', k);
console.log('--- top functions (share of busy)');
for (const f of s.functions.slice(0, 25)) console.log(((f.selfMs / busy) * 100).toFixed(1).padStart(5) + '%', f.name);
