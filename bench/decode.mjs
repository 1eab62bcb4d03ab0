// `npm run bench -- decode`: what the structure scan in front of decoding costs per request.
// Decodes the same ~60-byte payload with the scan (scanPayload + decodeScanned, what the agent
// runs) and without it (msgpackr alone, an unbounded decode; JSON.parse alone), in
// interleaved rounds; prints the median ns per decode. CPU only: no NATS.
import { codecs } from "@natsmesh/protocol";
import { DEFAULT_DECODE_LIMITS, decodeScanned, scanPayload } from "@natsmesh/protocol/internal";
import { Packr } from "msgpackr";
import { parseArgs, table } from "./lib.mjs";

// The codec's msgpackr settings and its cheap checks, without the structure scan: the baseline.
const packr = new Packr({
  useRecords: false,
  encodeUndefinedAsNil: true,
  mapsAsObjects: true,
  moreTypes: false,
});
const utf8 = new TextDecoder("utf-8", { fatal: true });

function unscanned(codec, data) {
  if (codec.name === "json") return JSON.parse(utf8.decode(data));
  const values = packr.unpackMultiple(data);
  if (values.length !== 1 || data.indexOf(0xc1) !== -1) throw new Error("bad");
  return values[0];
}

function scanned(codec, data) {
  const n = scanPayload(codec, data, DEFAULT_DECODE_LIMITS);
  if (typeof n !== "number") throw n;
  return decodeScanned(codec, data);
}

/** ns per call of `fn` over `iterations` calls. */
function time(fn, codec, data, iterations) {
  let sink = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) if (fn(codec, data) !== undefined) sink++;
  const ns = Number(process.hrtime.bigint() - start) / iterations;
  if (sink !== iterations) throw new Error("a decode returned nothing");
  return ns;
}

const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run(args) {
  const opts = parseArgs(args, { iterations: 200_000, rounds: 9, json: false });
  const value = { id: 4711, user: "checkout", amount: 12.5, items: [1, 2, 3], ok: true };
  const rows = [];
  for (const codec of [codecs.msgpack, codecs.json]) {
    const data = codec.encode(value);
    const without = [];
    const withScan = [];
    for (let r = 0; r < opts.rounds; r++) {
      without.push(time(unscanned, codec, data, opts.iterations));
      withScan.push(time(scanned, codec, data, opts.iterations));
    }
    const [a, b] = [med(without), med(withScan)];
    rows.push({
      codec: codec.name,
      bytes: data.length,
      "decode ns": a.toFixed(0),
      "scan + decode ns": b.toFixed(0),
      "scan costs ns": (b - a).toFixed(0),
      ratio: (b / a).toFixed(2),
    });
  }
  if (opts.json) console.log(JSON.stringify(rows, null, 2));
  else table(rows);
}
