const UNITS = [
  ["d", 86_400_000],
  ["h", 3_600_000],
  ["m", 60_000],
] as const;

/**
 * A duration in the largest whole unit that fits, as `ls` prints ages: `3s`, `5m`, `2h`, `4d`.
 * Negative durations (a clock behind the instance's) show as `0s`.
 */
export function formatAge(ms: number): string {
  for (const [unit, size] of UNITS) if (ms >= size) return `${Math.floor(ms / size)}${unit}`;
  return `${Math.max(0, Math.floor(ms / 1000))}s`;
}
