#!/usr/bin/env node
import { main } from "./main.js";

const code = await main(process.argv.slice(2));
process.exitCode = code;
// Everything is closed by now and Node exits on its own; should a stray handle (a socket in a
// dependency, say) keep it alive, leave anyway rather than hang a script. unref(): this timer
// never delays a normal exit.
setTimeout(() => process.exit(code), 2_000).unref();
