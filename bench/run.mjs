// Entry point of `npm run bench -- <name> [options]`: runs one benchmark against packages built
// by `tsc -b` (npm run bench builds first). Every benchmark bounds itself in count and time.
const benches = {
  request: () => import("./request.mjs"),
  auth: () => import("./auth.mjs"),
  presence: () => import("./presence.mjs"),
  decode: () => import("./decode.mjs"),
  dispatch: () => import("./dispatch.mjs"),
  events: () => import("./events.mjs"),
  histogram: () => import("./histogram.mjs"),
  "metrics-record": () => import("./metrics-record.mjs"),
};

const [name, ...args] = process.argv.slice(2);
const load = benches[name];
if (load === undefined) {
  console.error(`usage: npm run bench -- <${Object.keys(benches).join("|")}> [options]`);
  process.exit(2);
}
const { run } = await load();
await run(args);
