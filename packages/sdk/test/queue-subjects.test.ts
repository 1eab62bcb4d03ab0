import { subjects } from "@natsmesh/protocol";
import { QueueSubjects } from "@natsmesh/sdk/internal";
import { describe, expect, it } from "vitest";

describe("QueueSubjects", () => {
  it("builds P.svc.<service>.<method> once per pair, and checks names as Subjects does", () => {
    const q = new QueueSubjects(subjects("p"));
    const first = q.of("orders", "create");
    expect(first.toString("latin1")).toBe("p.svc.orders.create");
    expect(q.of("orders", "cancel").toString("latin1")).toBe("p.svc.orders.cancel");
    expect(q.of("users", "create").toString("latin1")).toBe("p.svc.users.create");
    expect(q.of("orders", "create")).toBe(first);
    for (const [service, method] of [
      ["orders", "a.b"],
      ["orders", "*"],
      ["or ders", "create"],
      ["", "create"],
      ["orders", ">"],
    ] as const) {
      expect(() => q.of(service, method)).toThrow(TypeError);
    }
  });

  it("stays bounded and correct past its size", () => {
    const q = new QueueSubjects(subjects("p"));
    for (let i = 0; i < 5000; i++) {
      expect(q.of(`s${i % 7}`, `m${i}`).toString("latin1")).toBe(`p.svc.s${i % 7}.m${i}`);
    }
    expect(q.of("s1", "m1").toString("latin1")).toBe("p.svc.s1.m1");
  });
});
