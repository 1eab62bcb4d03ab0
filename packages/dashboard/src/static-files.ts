import { readdirSync, readFileSync } from "node:fs";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";

/** A file of the page, held in memory. */
export interface StaticFile {
  readonly type: string;
  readonly body: Buffer;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

/** The page's files ship next to `dist/`, in `static/`. */
const STATIC_DIR = fileURLToPath(new URL("../static/", import.meta.url));

/**
 * Reads the page's files once, by name. Only the files found at start, of the types above, are
 * ever served: a request names a key of this map or gets 404, so no path reaches the disk.
 */
export function loadStaticFiles(dir: string = STATIC_DIR): ReadonlyMap<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (type !== undefined) files.set(name, { type, body: readFileSync(`${dir}/${name}`) });
  }
  return files;
}
