// CPU time of the processes a benchmark involves, so a result can be given as CPU per call:
// this process from process.cpuUsage(), a child that reports its own, and any other process
// (nats-server) from /proc/<pid>/stat, whose utime and stime count every thread.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ); 100 on every common Linux. */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Resolution of procCpuMicros(), in microseconds. */
export const PROC_TICK_US = 1e6 / CLK_TCK;

/** This process's user + system CPU time, in microseconds. */
export function selfCpuMicros() {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/**
 * User + system CPU time of any process (all its threads), in microseconds, from
 * /proc/<pid>/stat. Resolution: one clock tick (10 ms at USER_HZ 100).
 */
export function procCpuMicros(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) is in parentheses and may hold spaces: split after it.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of the full line (utime, stime) are 12 and 13 after the name.
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLK_TCK;
}
