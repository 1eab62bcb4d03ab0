import { readFile } from "node:fs/promises";
import { parse } from "yaml";

/** The parts of a compose service these tests read. */
export interface ComposeService {
  image?: string;
  build?: { context?: string; dockerfile?: string; args?: Record<string, string> };
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string | number>;
  env_file?: unknown;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition?: string }>;
  healthcheck?: { test?: string[] };
  profiles?: string[];
  network_mode?: string;
}

/** A compose file, anchors and merge keys resolved. */
export interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

/** Reads a compose file as Compose does: YAML 1.1 merge keys (`<<: *anchor`) applied. */
export async function readComposeFile(path: string): Promise<ComposeFile> {
  return parse(await readFile(path, "utf8"), { merge: true }) as ComposeFile;
}

/**
 * Compose's variable interpolation for the forms the files use: `${NAME}`, `${NAME:-default}`,
 * `${NAME-default}`, `${NAME:?error}` and `$$` for a literal `$`.
 */
export function interpolate(value: string, env: Record<string, string | undefined>): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g,
    (match, name: string | undefined, op: string | undefined, arg: string | undefined) => {
      if (match === "$$") return "$";
      const set = env[name!];
      const empty = set === undefined || (op?.startsWith(":") && set === "");
      if (op?.endsWith("-")) return empty ? (arg ?? "") : set!;
      if (op?.endsWith("?")) {
        if (empty) throw new Error(`${name} is required: ${arg}`);
        return set!;
      }
      return set ?? "";
    },
  );
}

/** Whether a service runs the natsmesh image built from docker/Dockerfile. */
export function isNatsmeshService(service: ComposeService): boolean {
  return service.build?.dockerfile === "docker/Dockerfile";
}
