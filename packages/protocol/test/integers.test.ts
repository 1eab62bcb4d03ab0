import { checkInt, isIntInRange } from "@natsmesh/protocol/internal";
import { describe, expect, it } from "vitest";

describe("integer ranges", () => {
  it("accepts integers within the bounds, the bounds included", () => {
    for (const n of [0, 1, 5, 10]) expect(isIntInRange(n, 0, 10)).toBe(true);
    expect(checkInt(10, "weight", 0, 10)).toBe(10);
  });

  it.each([-1, 11, 1.5, Number.NaN, Number.POSITIVE_INFINITY, "5", null, undefined, 5n])(
    "refuses %s",
    (value) => {
      expect(isIntInRange(value, 0, 10)).toBe(false);
      expect(() => checkInt(value, "weight", 0, 10)).toThrow(TypeError);
    },
  );

  it("names the option, the range and the value", () => {
    expect(() => checkInt(-1, "retries", 0, 100)).toThrow(
      "retries must be an integer from 0 to 100, got -1",
    );
  });
});
