import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { type Declarations, readDeclarations } from "./declarations.js";

// docs/api.md against the built declarations: every field of a public option type (and every
// member of the objects users hold, and of the handler contexts) has a row in its table, no
// table lists a field that no longer exists, and every name the packages export is mentioned.
// A section is a `### \`Name\`` heading (several names may share one table) followed by a
// table whose first column holds `field`.

const DOC = fileURLToPath(new URL("../docs/api.md", import.meta.url));

/** Entries whose exports the page documents in full. */
const PACKAGES = ["sdk", "agent", "registry"] as const;

/**
 * Types documented field by field besides every exported `…Options` type of {@link PACKAGES}
 * (found by name, so a new one is caught without editing this list).
 */
const TABLES: Record<string, readonly string[]> = {
  sdk: ["Mesh", "NatsCredentials", "PresenceQuotas"],
  agent: [
    "Agent",
    "AgentUpdate",
    "EventContext",
    "EventDefinition",
    "MethodDefinition",
    "RequestContext",
  ],
  registry: ["Registry"],
  protocol: ["GenerateKeyPairOptions", "IssueTokenOptions", "MeshErrorOptions"],
};

const ENTRIES = [...PACKAGES, "protocol"] as const;
type Entry = (typeof ENTRIES)[number];

/** Property names of each documented type. */
function declaredTables({ checker, exports }: Declarations<Entry>) {
  const tables = new Map<string, string[]>();
  for (const p of ENTRIES) {
    const wanted = new Set(TABLES[p] ?? []);
    for (const exported of exports.get(p)!) {
      const name = exported.name;
      const isOptions = p !== "protocol" && name.endsWith("Options");
      if (!isOptions && !wanted.has(name)) continue;
      wanted.delete(name);
      const symbol =
        exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      const type = checker.getDeclaredTypeOfSymbol(symbol);
      const fields = checker
        .getPropertiesOfType(type)
        .map((s) => s.name)
        // Symbol-keyed members ([Symbol.asyncDispose]) are described in the text.
        .filter((n) => !n.startsWith("__@"));
      const known = tables.get(name);
      if (known !== undefined && known.join() !== fields.join()) {
        throw new Error(`${name} is exported with different fields by two packages`);
      }
      tables.set(name, fields);
    }
    if (wanted.size > 0) throw new Error(`@natsmesh/${p} no longer exports ${[...wanted]}`);
  }
  return tables;
}

/** The tables of a page: each type named in a `###` heading → the first-column names of its table. */
function documentedTables(markdown: string): Map<string, string[]> {
  const tables = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of markdown.split("\n")) {
    const heading = /^#{2,4} (.*)$/.exec(line);
    if (heading !== null) {
      const names = [...heading[1]!.matchAll(/`([A-Za-z]+)`/g)].map((m) => m[1]!);
      // A heading of types only (`### \`A\`, \`B\``) opens a table; any other closes it.
      const typesOnly = heading[1]!.replace(/`[A-Za-z]+`|[,\s]/g, "") === "";
      current = names.length > 0 && typesOnly ? [] : undefined;
      if (current !== undefined) {
        for (const name of names) {
          if (tables.has(name)) throw new Error(`docs/api.md has two sections for ${name}`);
          tables.set(name, current);
        }
      }
      continue;
    }
    const row = /^\| `([A-Za-z]+)` \|/.exec(line);
    if (row !== null && current !== undefined) current.push(row[1]!);
  }
  return tables;
}

describe("docs/api.md", () => {
  const markdown = readFileSync(DOC, "utf8");
  const documented = documentedTables(markdown);
  const declarations = readDeclarations(ENTRIES);
  const declared = declaredTables(declarations);

  it("has a table for every public option type and documented object", () => {
    expect([...documented.keys()].sort()).toEqual([...declared.keys()].sort());
  });

  it.each([...declared.keys()].sort())("documents exactly the fields of %s", (name) => {
    expect([...(documented.get(name) ?? [])].sort()).toEqual([...declared.get(name)!].sort());
  });

  it.each(PACKAGES)("mentions every name @natsmesh/%s exports", (p) => {
    // As `name` or, for a function, `name(…)`.
    const missing = declarations.exports
      .get(p)!
      .map((s) => s.name)
      .filter((name) => !markdown.includes(`\`${name}\``) && !markdown.includes(`\`${name}(`));
    expect(missing).toEqual([]);
  });

  it("reads a table the way the checks above rely on", () => {
    const page = [
      "### `A`, `B`",
      "| field | default |",
      "|---|---|",
      "| `x` | 1 |",
      "| `y` | 2 |",
      "#### `a.ready()`",
      "| `z` | not a field of A |",
      "### `C`",
      "| `w` | 3 |",
    ].join("\n");
    expect(Object.fromEntries(documentedTables(page))).toEqual({
      A: ["x", "y"],
      B: ["x", "y"],
      C: ["w"],
    });
  });
});
