// Regenerates web/us-outline.svg (lower 48 states) from the npm package us-atlas (ISC; US Census
// Bureau cartographic boundaries). Run once by hand: `npm i --no-save us-atlas topojson-client`
// then `node make-outline.mjs > ../../web/us-outline.svg`. The page never needs the network.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const topo = JSON.parse(readFileSync(require.resolve('us-atlas/states-10m.json'), 'utf8'));
const { mesh } = require('topojson-client');

// The same equirectangular projection console.js uses: x = (lon + 125) * K, y = (50 - lat) * 10.
export const W = 1000, K = 10 * Math.cos((38 * Math.PI) / 180);
const px = ([lon, lat]) => [(lon + 125) * K, (50 - lat) * 10];
const lower48 = (g) => !['02', '15', '60', '66', '69', '72', '78'].includes(g.id);
const m = mesh(topo, { type: 'GeometryCollection', geometries: topo.objects.states.geometries.filter(lower48) });
let d = '';
for (const line of m.coordinates) {
  let last = null;
  const pts = [];
  for (const p of line.map(px)) {
    if (last && Math.hypot(p[0] - last[0], p[1] - last[1]) < 1.2) continue;
    pts.push(p); last = p;
  }
  if (pts.length < 2) continue;
  d += 'M' + pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join('L');
}
const width = Math.ceil((125 - 66) * K), height = 270;
process.stdout.write(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}"><path fill="none" stroke="#667" stroke-width="0.8" d="${d}"/></svg>\n`);
