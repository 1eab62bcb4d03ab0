// The dashboard in a real browser: Debian's chromium driven by playwright-core, against a real
// nats-server, registry and agents. Screenshots go to test-artifacts/ (gitignored).
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type Agent, MeshError, startAgent } from "@natsmesh/agent";
import { type Registry, startRegistry } from "@natsmesh/registry";
import { connectMesh, type Mesh } from "@natsmesh/sdk";
import { cleanup, setup, type TestSetup, uniquePrefix } from "@natsmesh/testing";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const CHROMIUM = "/usr/bin/chromium";
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const ARTIFACTS = resolve(import.meta.dirname, "..", "test-artifacts");
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
/** A metadata value that would run script if the page ever parsed presence as markup. */
const HOSTILE = `<img src=x onerror="document.body.dataset.pwned='1'">`;

if (!HAVE_CHROMIUM) {
  console.warn(
    `dashboard browser test skipped: ${CHROMIUM} is missing (apt-get install -y chromium; .ci/run installs it)`,
  );
}

describe.skipIf(!HAVE_CHROMIUM)("dashboard in Chromium", () => {
  let t: TestSetup;
  let registry: Registry;
  let browser: Browser;
  let page: Page;
  let mesh: Mesh;
  const agents: Agent[] = [];
  const pageErrors: string[] = [];
  const prefix = uniquePrefix("dash");

  function agent(
    service: string,
    version: string,
    extra: Partial<Parameters<typeof startAgent>[0]> = {},
  ) {
    return startAgent({
      servers: t.server.url,
      prefix,
      service,
      version,
      heartbeatMs: 200,
      methods: {
        pay: async (p: { n: number }) => {
          await sleep(1 + (p.n % 7));
          if (p.n % 10 === 0) throw new MeshError("DECLINED", "card declined", { status: 402 });
          return { ok: true };
        },
        refund: () => ({ ok: true }),
      },
      ...extra,
    }).then((a) => {
      agents.push(a);
      return a;
    });
  }

  function shot(name: string): Promise<Buffer> {
    mkdirSync(ARTIFACTS, { recursive: true });
    const path = join(ARTIFACTS, name);
    console.log(`dashboard screenshot: ${path}`);
    return page.screenshot({ path, fullPage: true });
  }

  beforeAll(async () => {
    t = await setup({ tag: "dash" });
    registry = await startRegistry({
      servers: t.server.url,
      prefix,
      heartbeatTimeoutMs: 1000,
      http: { port: 0, dashboard: { pollMs: 500 } },
    });
    await agent("checkout", "1.4.2", {
      zone: "eu-west-1a",
      metadata: { team: "payments", note: HOSTILE },
    });
    await agent("checkout", "1.4.2", { zone: "eu-west-1b", metadata: { team: "payments" } });
    await agent("inventory", "0.9.0", { zone: "eu-west-1a" });
    mesh = await connectMesh({ servers: t.server.url, prefix });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
    page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
    page.on("pageerror", (err) => pageErrors.push(String(err)));
    page.on("console", (m) => {
      if (m.type() === "error") pageErrors.push(m.text());
    });
    await page.goto(`http://127.0.0.1:${registry.httpPort}/`);
  });

  afterAll(async () => {
    await browser?.close();
    await cleanup(t, registry, mesh, ...agents);
  });

  it("lists the services and instances, with peer strings as text", async () => {
    for (const a of agents) {
      await page.locator(`tr[data-instance="${a.id}"]`).waitFor({ timeout: 10_000 });
    }
    await expect.poll(() => page.locator("article.service").count()).toBe(2);
    const row = page.locator(`tr[data-instance="${agents[0]!.id}"]`);
    expect(await row.textContent()).toContain("1.4.2");
    expect(await row.textContent()).toContain("eu-west-1a");
    // The hostile metadata is shown as the text it is, and nothing of it ran or loaded.
    expect(await row.locator(".chip", { hasText: "note=" }).textContent()).toBe(`note=${HOSTILE}`);
    expect(await page.locator("img[src='x']").count()).toBe(0);
    expect(await page.locator("body").getAttribute("data-pwned")).toBeNull();
    expect(await page.locator("body").getAttribute("data-nats")).toBe("connected");
  });

  it("shows instances appear and disappear as agents start and stop", async () => {
    const extra = await agent("checkout", "1.5.0-rc.1", { zone: "us-east-1a" });
    await page.locator(`tr[data-instance="${extra.id}"]`).waitFor({ timeout: 10_000 });
    await page.locator(`li[data-feed="up"][data-instance="${extra.id}"]`).waitFor();
    await extra.stop();
    agents.splice(agents.indexOf(extra), 1);
    await page
      .locator(`tr[data-instance="${extra.id}"]`)
      .waitFor({ state: "detached", timeout: 10_000 });
    await page.locator(`li[data-feed="down"][data-instance="${extra.id}"]`).waitFor();
  });

  it("moves request rate, error rate and latency under load", async () => {
    const rps = page.locator('article[data-service="checkout"] [data-metric="rps"]');
    const readRps = async () => Number.parseFloat((await rps.textContent()) ?? "") || 0;
    // Bounded load, in waves so the charts have a shape: at least 8 s (16 polls) and until
    // the page shows a rate, at most 25 s.
    const started = Date.now();
    let n = 0;
    let wave = 0;
    while (
      Date.now() - started < 25_000 &&
      (Date.now() - started < 8000 || (await readRps()) === 0)
    ) {
      const size = Math.round(12 + 10 * Math.sin(wave++ / 6));
      await Promise.allSettled(
        Array.from({ length: size }, () =>
          mesh.request("checkout", "pay", { n: n++ }, { timeout: 2000 }),
        ),
      );
    }
    expect(await readRps()).toBeGreaterThan(0);
    const card = page.locator('article[data-service="checkout"]');
    await expect
      .poll(async () => card.locator('[data-metric="errors"]').textContent())
      .toMatch(/%/);
    expect(await card.locator('[data-metric="latency"]').textContent()).toMatch(
      /(ms|µs) \/ .*(ms|µs)/,
    );
    await expect.poll(() => card.locator(".error-codes").textContent()).toContain("DECLINED");
    expect(await card.locator(".metric.rps path.line").count()).toBeGreaterThan(0);
    expect(await page.locator('[data-metric="total-rps"]').textContent()).not.toBe("—");
    await shot("dashboard.png");
  });

  it("says so when NATS is unreachable, and recovers", async () => {
    await t.server.stop();
    await page.locator('body[data-nats="disconnected"]').waitFor({ timeout: 15_000 });
    expect(await page.locator("#banner").textContent()).toContain("NATS is unreachable");
    await shot("dashboard-nats-down.png");
    await t.server.restart();
    await page.locator('body[data-nats="connected"]').waitFor({ timeout: 15_000 });
    expect(await page.locator("#banner").isHidden()).toBe(true);
  });

  it("says so when the dashboard server is gone", async () => {
    await registry.stop();
    await page.locator('body[data-server="gone"]').waitFor({ timeout: 15_000 });
    expect(await page.locator("#banner").textContent()).toContain(
      "dashboard server is unreachable",
    );
    // The last known instances stay on screen.
    expect(await page.locator("tr[data-instance]").count()).toBe(agents.length);
    await shot("dashboard-server-gone.png");
    expect(pageErrors.filter((e) => !e.includes("ERR_CONNECTION_REFUSED"))).toEqual([]);
  });
});
