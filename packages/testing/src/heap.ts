import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

let gc: (() => void) | undefined;

/**
 * The heap in use after two full collections, in MiB: what a test that bounds memory compares.
 * Exposes `gc` on first use, so the test runner needs no `--expose-gc`.
 */
export function heapAfterGcMiB(): number {
  if (gc === undefined) {
    setFlagsFromString("--expose-gc");
    gc = runInNewContext("gc") as () => void;
  }
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
}
