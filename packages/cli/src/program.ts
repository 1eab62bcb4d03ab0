import { readFileSync } from "node:fs";
import {
  DEFAULT_PREFIX,
  JWKS_KEY,
  KeyAlgorithm,
  PRESENCE_JWKS_KEY,
  PresenceLimits,
} from "@natsmesh/protocol";
import {
  assertInboxPrefix,
  type ConnectionIdentity,
  DEFAULT_SERVER,
  parseServers,
  resolveNatsCredentials,
} from "@natsmesh/protocol/internal";
import { Balance } from "@natsmesh/sdk";
import { Command, Help, Option } from "commander";
import { type AgentCommandOptions, agent } from "./commands/agent.js";
import { type CallCommandOptions, type CallTarget, call } from "./commands/call.js";
import { DASHBOARD_PORT, type DashboardCommandOptions, dashboard } from "./commands/dashboard.js";
import {
  type DlqLsOptions,
  type DlqPurgeOptions,
  type DlqReplayOptions,
  dlqLs,
  dlqPurge,
  dlqReplay,
  dlqShow,
} from "./commands/dlq.js";
import { type EventsEmitOptions, eventsEmit } from "./commands/events-emit.js";
import { eventsLs } from "./commands/events-ls.js";
import { keysGenerate } from "./commands/keys-generate.js";
import { keysPublish } from "./commands/keys-publish.js";
import { ls } from "./commands/ls.js";
import { type RegistryCommandOptions, registry } from "./commands/registry.js";
import { tokenInspect } from "./commands/token-inspect.js";
import { type TokenIssueOptions, tokenIssue } from "./commands/token-issue.js";
import { up } from "./commands/up.js";
import { watch } from "./commands/watch.js";
import { usageError } from "./errors.js";
import type { Io } from "./io.js";
import type { PresenceKeysOption } from "./nats/presence-keys.js";
import * as value from "./values.js";

/**
 * Every `natsmesh` command, its arguments, options, the variables they fall back on, and its
 * help, declared with commander. A new command is a file under `commands/` and a declaration
 * here. Parsing and usage errors are commander's; `main()` turns the outcome into an exit code.
 */

/** The process configuration every command sees: flags first, then the environment (12-factor). */
export interface GlobalOptions {
  /** From `--server`, else `NATS_URL`, else {@link DEFAULT_SERVER}. */
  readonly servers: readonly string[];
  /** From `--prefix`, else `MESH_PREFIX`, else `mesh`. */
  readonly prefix: string;
  readonly json: boolean;
  /** From `--log-level`, else `LOG_LEVEL`, else `info`. */
  readonly logLevel: value.LogLevel;
  /** From `--token`, else `MESH_TOKEN`: this process's own token, for commands that call or announce. */
  readonly token: string | undefined;
  /**
   * Who the process is to NATS: `--user`/`--password`, `--nats-token`, `--creds` or `--nkey`
   * (else `NATS_USER`/`NATS_PASSWORD`, `NATS_TOKEN`, `NATS_CREDS`, `NATS_NKEY`), and
   * `--inbox-prefix` (`NATS_INBOX_PREFIX`). Never printed.
   */
  readonly identity: ConnectionIdentity;
}

const GLOBAL_HEADING = "Global options:";

/** The flags every command takes (before or after the command word); new objects each call. */
function globalOptions(): Option[] {
  return [
    fromEnv("--server <URL>", "NATS server(s), comma-separated", "NATS_URL").default(
      DEFAULT_SERVER,
    ),
    fromEnv("--prefix <P>", "Subject prefix of the mesh", "MESH_PREFIX", value.prefix).default(
      DEFAULT_PREFIX,
    ),
    fromEnv(
      "--token <JWT>",
      "This process's own token, for commands that call or announce",
      "MESH_TOKEN",
    ),
    fromEnv(
      "--log-level <LEVEL>",
      `Log level: ${value.LOG_LEVELS.join(", ")}`,
      "LOG_LEVEL",
      value.logLevel,
    ).default("info"),
    new Option("--json", "Print JSON instead of text"),
  ].map((o) => o.helpGroup(GLOBAL_HEADING));
}

const NATS_HEADING = "NATS connection options:";

/**
 * Who the process is to NATS, on every command that connects: the variables are the `nats`
 * CLI's, so one environment serves both. Secrets on a command line show in `ps`: prefer the
 * variables or the files.
 */
function natsOptions(): Option[] {
  return [
    fromEnv("--user <USER>", "NATS user (with --password)", "NATS_USER"),
    fromEnv(
      "--password <PASSWORD>",
      "NATS password of --user (a flag shows in ps: prefer the variable)",
      "NATS_PASSWORD",
      value.secret,
    ),
    fromEnv(
      "--nats-token <TOKEN>",
      "NATS authorization token (a flag shows in ps: prefer the variable)",
      "NATS_TOKEN",
      value.secret,
    ),
    fromEnv("--creds <FILE>", "NATS credentials file (user JWT and nkey seed)", "NATS_CREDS"),
    fromEnv("--nkey <FILE>", "File holding the NATS user's nkey seed", "NATS_NKEY"),
    fromEnv(
      "--inbox-prefix <PREFIX>",
      "Inbox prefix of this connection, for NATS users limited to their own inboxes",
      "NATS_INBOX_PREFIX",
    ),
  ].map((o) => o.helpGroup(NATS_HEADING));
}

/** An option that falls back on the environment variable `variable`; blank or absent is unset. */
function fromEnv(
  flags: string,
  description: string,
  variable: string,
  parse: (text: string) => unknown = value.optional,
): Option {
  return new Option(flags, description).env(variable).argParser(parse);
}

/** A duration in ms, from 1 ms to an hour. */
const milliseconds = value.integer(1, 3_600_000);
/** A duration in ms, from 1 ms to an hour, or blank for the default. */
const optionalMilliseconds = value.optionalInteger(1, 3_600_000);
/** A TCP port, 0 for any free one. */
const port = value.integer(0, 65_535);

/** `--timeout <MS>`, 5000 by default. */
function timeoutOption(description: string): Option {
  return new Option("--timeout <MS>", description).default(5000).argParser(milliseconds);
}

/**
 * `--jwks`, `--issuer` and `--audience` of a process that checks tokens (registry, agent), in
 * that order; `needsJwks` checks them together.
 */
function tokenCheckOptions(jwksDescription: string): Option[] {
  return [
    fromEnv("--jwks <JWKS>", jwksDescription, "MESH_JWKS"),
    fromEnv("--issuer <ISS>", "Required iss of tokens (not checked by default)", "MESH_ISSUER"),
    fromEnv("--audience <AUD>", "Required aud of tokens (natsmesh by default)", "MESH_AUDIENCE"),
  ];
}

/** Adds `options` to `cmd`, in order: for option sets declared once and used by several commands. */
function withOptions(cmd: Command, options: readonly Option[]): Command {
  for (const option of options) cmd.addOption(option);
  return cmd;
}

/** Commands that never connect to NATS, so take no NATS connection options. */
const OFFLINE = new Set(["keys generate", "token issue", "token inspect"]);

/**
 * The NATS identity the flags and variables give, checked: a bad one is a usage error. Commands
 * without the NATS options (`token issue`, …) get none, whatever the environment holds.
 */
function identityOf(
  pick: <T>(key: string) => T | undefined,
  typed: (key: string) => boolean,
  prefix: string,
): ConnectionIdentity {
  const text = (key: string) => pick<string>(key) || undefined;
  // A kind of credentials typed on the command line replaces the other kinds the variables
  // give: a `NATS_USER` left in the shell does not turn `--creds` into two kinds at once, while
  // `--password` still goes with `NATS_USER`.
  const typedKinds = new Set(
    Object.entries(CREDENTIAL_KIND)
      .filter(([key]) => typed(key))
      .map(([, kind]) => kind),
  );
  const credential = (key: string) =>
    typedKinds.size > 0 && !typedKinds.has(CREDENTIAL_KIND[key]!) ? undefined : text(key);
  try {
    const credentials = resolveNatsCredentials({
      user: credential("user"),
      password: credential("password"),
      token: credential("natsToken"),
      credsFile: credential("creds"),
      nkeyFile: credential("nkey"),
    });
    const inboxPrefix = text("inboxPrefix");
    if (inboxPrefix !== undefined) assertInboxPrefix(inboxPrefix, prefix);
    return { credentials, inboxPrefix };
  } catch (err) {
    // The messages name options and fields, never their values.
    throw usageError(
      (err as Error).message.replace(/credentials\.(\w+)/g, (_m, f: string) => `--${flagOf(f)}`),
    );
  }
}

/** The options that carry NATS credentials (commander keys), and the kind each belongs to. */
const CREDENTIAL_KIND: Readonly<Record<string, string>> = {
  user: "user",
  password: "user",
  natsToken: "token",
  creds: "creds",
  nkey: "nkey",
};

/** The flags of the `NatsCredentials` fields not named like them, for messages. */
const FLAG_OF_FIELD: Readonly<Record<string, string>> = {
  token: "nats-token",
  credsFile: "creds",
  nkeyFile: "nkey",
};

function flagOf(field: string): string {
  return FLAG_OF_FIELD[field] ?? field;
}

/** Commands from `cmd` up to the program. */
function lineage(cmd: Command): Command[] {
  const chain: Command[] = [];
  for (let c: Command | null = cmd; c !== null; c = c.parent) chain.push(c);
  return chain;
}

/**
 * The global options of the command `cmd` runs. The program and each command declare them, so
 * they may come before or after the command word; a flag typed anywhere wins over a variable,
 * the nearest one over a farther one.
 */
export function globalsOf(cmd: Command): GlobalOptions {
  const chain = lineage(cmd);
  const typedIn = (key: string) => chain.find((c) => c.getOptionValueSource(key) === "cli");
  const pick = <T>(key: string): T | undefined =>
    (typedIn(key) ?? cmd).getOptionValue(key) as T | undefined;
  // `||`: a blank variable is stored as "" (see value.blankAsUnset).
  const prefix = pick<string>("prefix") || DEFAULT_PREFIX;
  return {
    servers: parseServers(pick<string>("server")),
    prefix,
    json: pick<boolean>("json") === true,
    logLevel: pick<value.LogLevel>("logLevel") || "info",
    token: pick<string>("token") || undefined,
    identity: identityOf(pick, (key) => typedIn(key) !== undefined, prefix),
  };
}

/**
 * Whether the global option `key` was typed or set by its variable (not blank), rather than
 * left to its default.
 */
function isGiven(cmd: Command, key: string): boolean {
  return lineage(cmd).some((c) => {
    const source = c.getOptionValueSource(key);
    const value: unknown = c.getOptionValue(key);
    return (source === "cli" || source === "env") && value !== undefined && value !== "";
  });
}

/** The path of `cmd` below the program: `ls`, `keys generate`. */
function path(cmd: Command): string {
  return lineage(cmd)
    .slice(0, -1)
    .reverse()
    .map((c) => c.name())
    .join(" ");
}

/** The commands that run something, groups (`keys`) replaced by their commands. */
function leaves(cmd: Command): Command[] {
  return cmd.commands.flatMap((c) => (c.commands.length > 0 ? leaves(c) : [c]));
}

/**
 * What follows a usage error: the command's synopsis and where to read more, rather than the
 * whole help.
 */
export function usageHint(cmd: Command): string {
  const name = cmd.parent === null ? "" : ` ${path(cmd)}`;
  const what = cmd.commands.length > 0 ? "commands" : "options";
  return `Usage: ${new Help().commandUsage(cmd)}\nRun "natsmesh${name} --help" for its ${what}.`;
}

/** The version of `@natsmesh/cli`, from its package.json (one level above `dist/`). */
function cliVersion(): string {
  const url = new URL("../package.json", import.meta.url);
  return String((JSON.parse(readFileSync(url, "utf8")) as { version: unknown }).version);
}

/**
 * `--issuer` and `--audience` typed without a key set to check them with. MESH_ISSUER and
 * MESH_AUDIENCE are shared by every process of a mesh: only a flag is a mistake.
 */
function needsJwks(o: { jwks: string | undefined }, cmd: Command): void {
  for (const flag of ["issuer", "audience", "signingKey", "unsignedPresence"] as const) {
    if (o.jwks === undefined && cmd.getOptionValueSource(flag) === "cli") {
      const name = flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
      throw usageError(`--${name} needs --jwks (or MESH_JWKS)`);
    }
  }
}

/** `--presence-keys` of the commands that read presence (`call`, `ls`, `watch`, `dashboard`); a new object each call. */
function presenceKeysOption(): Option {
  return new Option(
    "--presence-keys <JWKS>",
    'Take only records the registries signed: their public keys, a file, inline JSON or "kv" (the key the signing registry publishes; default MESH_PRESENCE_KEYS)',
  ).argParser(value.presenceKeys);
}

/**
 * The `natsmesh` program for one run. Each action resolves to an exit code, handed to `done`;
 * failures meant for the user are thrown as `CliError`.
 */
export function createProgram(io: Io, done: (exitCode: number) => void): Command {
  const program = new Command("natsmesh")
    .description("natsmesh: a service mesh on NATS")
    .enablePositionalOptions()
    .exitOverride()
    .helpCommand(false)
    .addHelpOption(new Option("-h, --help", "Show help").helpGroup(GLOBAL_HEADING))
    .configureOutput({
      writeOut: (text) => void io.stdout.write(text),
      writeErr: (text) => void io.stderr.write(text),
      outputError: (text, write) => write(`natsmesh: ${text.replace(/^error: /, "")}`),
    })
    .configureHelp({
      // Commands of a group are listed by their full name (`keys generate`), with arguments.
      visibleCommands: (cmd) => leaves(cmd),
      subcommandTerm: (cmd) =>
        [
          path(cmd),
          ...cmd.registeredArguments.map((a) => (a.required ? `<${a.name()}>` : `[${a.name()}]`)),
        ].join(" "),
    })
    .version(cliVersion(), "--version", "Print the version");
  const run = async (exitCode: Promise<number>) => done(await exitCode);

  program
    .command("ls")
    .summary("List the running instances recorded in the presence bucket")
    .description(
      "List the running instances recorded in the KV bucket <prefix>_presence. Reads the bucket " +
        "directly: needs no registry to be running right now, only one to have run. Records " +
        "that do not validate (with --presence-keys or MESH_PRESENCE_KEYS: that no registry " +
        "signed) are skipped with a warning on stderr.",
    )
    .argument("[service]", "Only instances of this service", value.name)
    .addOption(presenceKeysOption())
    .action((service: string | undefined, o: PresenceKeysOption, cmd: Command) =>
      run(ls(globalsOf(cmd), service, o, io)),
    );

  program
    .command("watch")
    .summary("Follow instances as they come up, change and go down")
    .description(
      "Print the current instances as `up` lines, then one line per change, until SIGINT or " +
        "SIGTERM. Waits for the presence bucket if no registry has created it yet, and keeps " +
        "watching across NATS server restarts. With --json, one JSON object per line.",
    )
    .argument("[service]", "Only instances of this service", value.name)
    .addOption(presenceKeysOption())
    .action((service: string | undefined, o: PresenceKeysOption, cmd: Command) =>
      run(watch(globalsOf(cmd), service, o, io)),
    );

  const registryCommand = program
    .command("registry")
    .summary("Run a registry: mirror presence into KV, evict dead instances")
    .description(
      "Run a registry until SIGINT or SIGTERM, then stop gracefully (release the leader lease) " +
        "and exit 0. Run several for availability: one leads and writes, the others take over " +
        "when it goes. Logs are pino JSON on stdout (readable lines on a terminal).\n\n" +
        "With --jwks (or MESH_JWKS) presence is signed: an up, hb or down counts only when its " +
        "token verifies and its scope holds announce:<service>; the rest is dropped, counted and " +
        'logged. The keys are a JWKS file (re-read when it changes), inline JSON, or "kv": the ' +
        `"${JWKS_KEY}" key of the <prefix>_registry bucket, where \`natsmesh keys publish\` puts ` +
        "them (watched).\n\n" +
        "With auth on, the registry signs every record it writes with --signing-key (or " +
        "MESH_SIGNING_KEY): a private Ed25519 JWK, inline or a file, whose public half callers " +
        "take as --presence-keys (MESH_PRESENCE_KEYS), so a record written by anyone else is " +
        `ignored. The leader publishes that public half under "${PRESENCE_JWKS_KEY}" in the ` +
        "<prefix>_registry bucket (never in the token keys), which --presence-keys kv reads. " +
        "Without a key it refuses to start, unless --unsigned-presence (or " +
        "MESH_UNSIGNED_PRESENCE=1) says records may go unsigned.",
    )
    .addOption(
      fromEnv(
        "--http-port <N>",
        "Serve /healthz, /v1/services, /metrics and the dashboard here (0: any free port)",
        "MESH_HTTP_PORT",
        port,
      ),
    )
    .addOption(
      fromEnv(
        "--http-host <H>",
        "Address to bind the HTTP endpoint to (default 127.0.0.1)",
        "MESH_HTTP_HOST",
        value.nonEmpty,
      ),
    )
    .option(
      "--heartbeat-timeout <MS>",
      "Evict instances silent this long (default 3 × --heartbeat, or 3000)",
      milliseconds,
    )
    .addOption(
      fromEnv(
        "--heartbeat <MS>",
        "The agents' heartbeat interval",
        "MESH_HEARTBEAT_MS",
        optionalMilliseconds,
      ),
    )
    .option("--lease <MS>", "Leader lease time (default 5000)", milliseconds)
    .addOption(
      fromEnv(
        "--replicas <N>",
        "Replicas of the buckets it creates (default 1)",
        "MESH_REPLICAS",
        value.integer(1, 5),
      ),
    );
  withOptions(
    registryCommand,
    tokenCheckOptions('Check tokens with these public keys: a file, inline JSON or "kv"'),
  )
    .option(
      "--signing-key <JWK>",
      "Sign records with this private Ed25519 JWK: a file or inline JSON (default MESH_SIGNING_KEY)",
      value.nonEmpty,
    )
    .option(
      "--unsigned-presence",
      "With auth, write records unsigned: callers cannot tell them from forged ones",
    )
    .action((o: RegistryCommandOptions, cmd: Command) => {
      needsJwks(o, cmd);
      return run(registry(globalsOf(cmd), o, io));
    });

  program
    .command("up")
    .summary("Run a whole mesh here: NATS, a registry, the dashboard and the example services")
    .description(
      "Run a mesh on this machine with nothing to configure, until SIGINT or SIGTERM:\n" +
        "  1. NATS: NATS_URL (or --server) when set; else the JetStream server at " +
        "127.0.0.1:<--nats-port> if one answers, with the NATS credentials given if any (a " +
        "server there that refuses them is an error); else nats-server -js started from the " +
        "PATH, its store in <--dir>/nats (on --nats-port, or any free port when something " +
        "else holds it: a server without JetStream or wanting credentials, said on stderr); " +
        "else it says how to get one.\n" +
        "  2. a registry, serving the dashboard on --port;\n" +
        "  3. the example services from examples/services/: echo ×2 (weights 1 and 3), " +
        "greeter, slow and orders, each an agent with its own connection;\n" +
        "  4. the presence table, a few demo calls, and what to try next;\n" +
        "  5. presence changes, until a signal: then every instance drains, and what up started " +
        "stops, nats-server last.\n" +
        "With --auth, every call and announcement needs a token: a signing key is made in " +
        "<--dir>/keys (kept for the next run) and a caller token printed and written to " +
        "<--dir>/keys/caller.jwt. The components' logs go to stderr (warnings only, unless " +
        "--log-level or LOG_LEVEL says otherwise). With --json, stdout is one JSON object per " +
        'line: {"type":"ready",...} with the URLs and pids, {"type":"call",...} per demo call, ' +
        'presence changes as natsmesh watch --json prints them, and {"type":"stopped"}.',
    )
    .addOption(
      new Option("--dir <DIR>", "Where the nats-server store and the --auth keys go")
        .default(".natsmesh")
        .argParser(value.nonEmpty),
    )
    .addOption(
      new Option("--nats-port <N>", "Port of the local NATS server to use, or to start")
        .default(4222)
        .argParser(value.integer(1, 65_535)),
    )
    .option(
      "--port <N>",
      `Dashboard port (default ${DASHBOARD_PORT}, or any free port when taken; 0: any)`,
      port,
    )
    .option("--auth", "Run everything with tokens on; print a caller token")
    .option("--no-demo", "Skip the demo calls")
    .action(
      (
        o: { dir: string; natsPort: number; port?: number; auth?: boolean; demo: boolean },
        cmd: Command,
      ) =>
        run(
          up(
            globalsOf(cmd),
            { dir: o.dir, natsPort: o.natsPort, port: o.port, auth: o.auth === true, demo: o.demo },
            {
              natsGiven: isGiven(cmd, "server"),
              logLevel: isGiven(cmd, "logLevel") ? globalsOf(cmd).logLevel : "warn",
            },
            io,
          ),
        ),
    );

  program
    .command("call")
    .summary("Call a service method with a JSON payload and print the reply")
    .description(
      "Send one request to <service>.<method> through the SDK (with its balancing, retries of " +
        "calls that never ran, and deadline) with a JSON payload (or - to read it from stdin; " +
        "none: no payload), and print the reply as JSON: indented for people, one line with " +
        "--json. A failed call prints its error code, status and message on stderr (one JSON " +
        "object with --json). With --token (or MESH_TOKEN, or the file MESH_TOKEN_FILE) the " +
        "call carries that token.",
    )
    .argument("<service.method>", "What to call, e.g. greeter.hello", value.callTarget)
    .argument("[json]", 'Payload as JSON, e.g. \'{"name":"you"}\', or - for stdin')
    .addOption(
      new Option(
        "--balance <B>",
        `How to pick an instance: ${Object.values(Balance).join(", ")}`,
      ).argParser(value.balance),
    )
    .addOption(timeoutOption("How long the call may take, retries included"))
    .option(
      "--version <RANGE>",
      "Only instances of this version or semver range (^1, 2.x); balance weighted unless --balance",
      value.nonEmpty,
    )
    .addOption(presenceKeysOption())
    .addHelpText(
      "after",
      "\nExit codes:\n" +
        "  0  the reply is on stdout\n" +
        "  1  the call could not be made: NATS unreachable\n" +
        "  2  usage: a bad flag, target or payload (not JSON)\n" +
        "  3  unavailable: no instance took the call, or it did not finish in time (UNAVAILABLE,\n" +
        "     OVERLOADED, DEADLINE_EXCEEDED); trying again later may work\n" +
        "  4  the service answered with an error (BAD_REQUEST, NOT_FOUND, UNAUTHENTICATED,\n" +
        "     FORBIDDEN, INTERNAL, or its own code)\n",
    )
    .action((target: CallTarget, json: string | undefined, o: CallCommandOptions, cmd: Command) =>
      run(call(globalsOf(cmd), target, json, o, io)),
    );

  const agentCommand = program
    .command("agent")
    .summary("Run a service module as an agent: host its methods and events on the mesh")
    .description(
      "Run the service a module describes (an ES module whose default export is { service, " +
        "version?, methods?, events? }, e.g. examples/services/echo.mjs) as one agent, until " +
        "SIGINT or SIGTERM; then drain it (calls in flight finish, up to --drain-timeout) and " +
        "exit 0. Handlers get ctx.mesh for nested calls and emits, with this agent's token. " +
        "Every setting has a variable, so a container needs no flags. Logs are pino JSON on " +
        "stdout (readable lines on a terminal, unless --json).\n\n" +
        "Exit codes: 0 stopped on a signal; 1 NATS unreachable or the agent failed to start; " +
        "2 bad flags or variables, or a module that is missing, fails to load or is not a " +
        "service.",
    )
    .argument("<module>", "Path of the service module (.mjs or .js)")
    .addOption(
      fromEnv(
        "--weight <N>",
        "Share of weighted traffic, 0-10000 (default 100)",
        "MESH_WEIGHT",
        value.optionalInteger(0, PresenceLimits.maxWeight),
      ),
    )
    .addOption(
      fromEnv(
        "--zone <ZONE>",
        "Zone this instance runs in, for zone-preferring callers",
        "MESH_ZONE",
        value.optionalName,
      ),
    )
    .addOption(
      fromEnv(
        "--version <V>",
        "Version to announce, instead of the module's",
        "MESH_VERSION",
        value.version,
      ),
    )
    .addOption(
      fromEnv(
        "--concurrency <N>",
        "Most calls handled at once; more get OVERLOADED (default 256)",
        "MESH_CONCURRENCY",
        value.optionalInteger(1, 1_000_000),
      ),
    )
    .addOption(
      fromEnv(
        "--heartbeat <MS>",
        "Heartbeat interval (default 1000)",
        "MESH_HEARTBEAT_MS",
        optionalMilliseconds,
      ),
    )
    .addOption(
      fromEnv(
        "--drain-timeout <MS>",
        "How long calls in flight may finish on stop (default 10000)",
        "MESH_DRAIN_TIMEOUT_MS",
        optionalMilliseconds,
      ),
    )
    .addOption(
      fromEnv(
        "--metrics-port <N>",
        "Serve Prometheus metrics at http://<host>:<N>/metrics (0: any free port; default none)",
        "MESH_METRICS_PORT",
        value.optionalInteger(0, 65_535),
      ),
    )
    .addOption(
      fromEnv(
        "--metrics-host <H>",
        "Address the metrics port binds (default 127.0.0.1)",
        "MESH_METRICS_HOST",
      ),
    )
    .addOption(
      fromEnv(
        "--token-file <FILE>",
        "Read this agent's token from a file (re-read on refresh)",
        "MESH_TOKEN_FILE",
      ),
    );
  withOptions(
    agentCommand,
    tokenCheckOptions('Check callers\' tokens with these public keys: a file, inline JSON or "kv"'),
  )
    .addOption(
      fromEnv(
        "--inbox-prefixes <LIST>",
        "Answer only callers whose inboxes are under these prefixes, comma-separated " +
          "(default _INBOX; callers with --inbox-prefix need theirs listed)",
        "MESH_INBOX_PREFIXES",
      ),
    )
    .action((module: string, o: AgentCommandOptions, cmd: Command) => {
      needsJwks(o, cmd);
      const options = value.blankAsUnset(o);
      if (options.metricsHost !== undefined && options.metricsPort === undefined) {
        throw usageError("--metrics-host needs --metrics-port (or MESH_METRICS_PORT)");
      }
      return run(agent(globalsOf(cmd), module, options, io));
    });

  const events = program.command("events").description("Events: streams and consumer groups, emit");
  events
    .command("ls")
    .summary(
      "Show the event streams, consumer groups (pending, in flight, redelivered) and dead letters",
    )
    .description(
      "Show <prefix>_events and <prefix>_dlq (events kept, size, limits), every consumer group " +
        "on the events stream (a service's durable subscription to a pattern: events pending, " +
        "in flight in handlers or waiting for a retry, redelivered, the pull requests of its " +
        "instances) and the dead letters kept per service. Needs JetStream.",
    )
    .action((_o, cmd: Command) => run(eventsLs(globalsOf(cmd), io)));
  events
    .command("emit")
    .summary("Emit a durable event (JSON) and print where the stream stored it")
    .description(
      "Emit <event> with a JSON payload (or - to read it from stdin; none: no payload), as " +
        "mesh.emit() does: stored in <prefix>_events, acknowledged, then printed as stream and " +
        "sequence. With --token (or MESH_TOKEN) the event carries it; its scope must hold " +
        "emit:<event>. Emitting again with the same --id within 2 minutes stores it once.",
    )
    .argument("<event>", "Event name, e.g. order.created", value.eventName)
    .argument("[json]", "Payload as JSON, or - for stdin")
    .option("--id <ID>", "Event id (Nats-Msg-Id), for deduplication", value.nonEmpty)
    .addOption(timeoutOption("How long to wait for the stream"))
    .action((event: string, json: string | undefined, o: EventsEmitOptions, cmd: Command) =>
      run(eventsEmit(globalsOf(cmd), event, json, o, io)),
    );

  const dlq = program.command("dlq").description("Dead letters: ls, show, replay, purge");
  dlq
    .command("ls")
    .summary("List dead letters: sequence, service, event, error, deliveries, age")
    .description(
      "List the dead letters in <prefix>_dlq in stream order: events a service's durable " +
        "subscription gave up on (after maxDeliver failures, a non-retryable error, or a check " +
        "that failed: undecodable, too large, bad or missing token). Letters that natsmesh did " +
        "not write are listed as such and never replayed.",
    )
    .option("--service <NAME>", "Only this service's dead letters", value.name)
    .addOption(
      new Option("--from <SEQ>", "First sequence to look at").default(1).argParser(value.sequence),
    )
    .addOption(
      new Option("--limit <N>", "Most dead letters listed")
        .default(100)
        .argParser(value.integer(1, 10_000)),
    )
    .action((o: DlqLsOptions, cmd: Command) => run(dlqLs(globalsOf(cmd), o, io)));
  dlq
    .command("show")
    .summary("Show one dead letter: error, headers (token redacted) and payload")
    .argument("<seq>", "Its sequence in <prefix>_dlq (from dlq ls)", value.sequence)
    .action((seq: number, _o, cmd: Command) => run(dlqShow(globalsOf(cmd), seq, io)));
  dlq
    .command("replay")
    .summary("Emit dead letters again for the service that gave up on them, then remove them")
    .description(
      "Publish each dead letter again on its original subject, stored and acknowledged by " +
        "<prefix>_events, marked for its service only (the other services do not handle it " +
        "again), then delete it from <prefix>_dlq. With --token (or MESH_TOKEN) the replay " +
        "carries that token instead of the event's own (needed when the original expired since " +
        "or was refused). Exits 1 when any letter could not be replayed.",
    )
    .argument("[seq...]", "Sequences in <prefix>_dlq", (text: string, previous: number[] = []) => [
      ...previous,
      value.sequence(text),
    ])
    .option("--service <NAME>", "Every dead letter of this service", value.name)
    .action((seqs: number[] | undefined, o: DlqReplayOptions, cmd: Command) =>
      run(dlqReplay(globalsOf(cmd), seqs ?? [], o, io)),
    );
  dlq
    .command("purge")
    .summary("Delete dead letters for good: a service's, one event's of a service, or all")
    .option("--service <NAME>", "This service's dead letters", value.name)
    .option("--event <EVENT>", "Only this event's (needs --service)", value.eventName)
    .option("--all", "Every dead letter of the mesh")
    .action((o: DlqPurgeOptions, cmd: Command) => run(dlqPurge(globalsOf(cmd), o, io)));

  program
    .command("dashboard")
    .summary("Serve the live web dashboard of the mesh's instances and traffic")
    .description(
      "Serve a web page of every service and instance (from the presence bucket) with request " +
        "rate, error rate and p50/p99 latency (from the agents' $SRV.STATS, asked every 2 s " +
        "while a page is open), updated live, until SIGINT or SIGTERM. Prints the page's URL " +
        "(with --json, { url, host, port }). Listens on 127.0.0.1 unless told otherwise, and " +
        "then answers only requests for localhost; agents with auth on show their traffic only " +
        "to a token (--token or MESH_TOKEN, else the file --token-file or MESH_TOKEN_FILE) whose " +
        "scope holds stats:* (or stats:<service>). Every setting has a variable, so a container " +
        "needs no flags.",
    )
    .addOption(
      fromEnv(
        "--port <N>",
        `Port to listen on (default ${DASHBOARD_PORT}; 0: any free port)`,
        "MESH_DASHBOARD_PORT",
        value.optionalInteger(0, 65_535),
      ),
    )
    .addOption(
      fromEnv("--host <H>", "Address to listen on (default 127.0.0.1)", "MESH_DASHBOARD_HOST"),
    )
    .addOption(
      fromEnv(
        "--token-file <FILE>",
        "Read the dashboard's token from a file (re-read on refresh; --token wins)",
        "MESH_TOKEN_FILE",
      ),
    )
    .addOption(presenceKeysOption())
    .action((o: DashboardCommandOptions, cmd: Command) =>
      run(dashboard(globalsOf(cmd), value.blankAsUnset(o), io)),
    );

  const keys = program.command("keys").description("Signing keys: generate, publish");
  keys
    .command("generate")
    .summary("Generate a signing key pair: a private key file and a public jwks.json")
    .description(
      "Write the private key to <kid>.private.jwk.json (mode 0600) and its public key to " +
        "jwks.json in --out. If jwks.json exists, the new key is ADDED to it and the old ones " +
        "stay: that is a key rotation, where tokens signed with the old key keep verifying " +
        "until you remove it. Give the private key only to whoever issues tokens (natsmesh " +
        "token issue); hand jwks.json to registries and agents (--jwks) or publish it " +
        "(natsmesh keys publish). Needs no NATS.",
    )
    .addOption(
      new Option("--alg <ALG>", "Signature algorithm: EdDSA (Ed25519), ES256 or RS256")
        .default(KeyAlgorithm.EdDSA)
        .argParser(value.keyAlgorithm),
    )
    .addOption(
      new Option("--out <DIR>", "Directory to write to").default(".").argParser(value.nonEmpty),
    )
    .option(
      "--force",
      "Overwrite an existing key file, or replace a jwks.json that is not a key set",
    )
    .action((o: { alg: KeyAlgorithm; out: string; force?: boolean }, cmd: Command) =>
      run(keysGenerate(globalsOf(cmd), { ...o, force: o.force === true }, io)),
    );
  keys
    .command("publish")
    .summary('Publish a JWKS to the registry bucket (key "jwks"), where --jwks kv reads it')
    .description(
      `Put the key set under the key "${JWKS_KEY}" of the <prefix>_registry bucket, creating ` +
        "the bucket if no registry has yet. Registries and agents started with --jwks kv watch " +
        "that key and switch to the new keys without a restart. The whole set is replaced: to " +
        "rotate, publish a set holding the old and the new key (as keys generate leaves " +
        "jwks.json), and later one without the old key. Private, symmetric and empty key sets " +
        "are refused.",
    )
    .argument("<file>", "The JWKS file (jwks.json from keys generate)")
    .action((file: string, _o, cmd: Command) => run(keysPublish(globalsOf(cmd), file, io)));

  const token = program.command("token").description("Tokens: issue, inspect");
  token
    .command("issue")
    .summary("Sign a token with a private key file and print it")
    .description(
      "Print the JWT alone on stdout, so TOKEN=$(natsmesh token issue ...) works; with --json, " +
        "{ token, kid, exp }. The scope is a space-separated list of patterns: billing.charge, " +
        "billing.* (a service), *.read (a method of any service), * (anything), announce:billing " +
        "(an agent's right to announce the service). Needs no NATS.",
    )
    .addOption(
      new Option("--key <FILE>", "Private key file (<kid>.private.jwk.json from keys generate)")
        .makeOptionMandatory()
        .argParser(value.nonEmpty),
    )
    .addOption(
      new Option("--sub <NAME>", "Who the token is for (sub)")
        .makeOptionMandatory()
        .argParser(value.nonEmpty),
    )
    .addOption(
      new Option("--scope <PATTERNS>", 'What it may call, e.g. "billing.* greeter.hello"')
        .makeOptionMandatory()
        .argParser(value.scope),
    )
    .addOption(
      new Option("--ttl <TTL>", "Lifetime: seconds (90) or a span (30m, 1h, 2d)")
        .default(3600, "1h")
        .argParser(value.timeSpan),
    )
    .addOption(fromEnv("--issuer <ISS>", "iss claim (none by default)", "MESH_ISSUER"))
    .addOption(fromEnv("--audience <AUD>", "aud claim (natsmesh by default)", "MESH_AUDIENCE"))
    .action((o: TokenIssueOptions, cmd: Command) => run(tokenIssue(globalsOf(cmd), o, io)));
  token
    .command("inspect")
    .summary("Show a token's header, claims, expiry and scope (decoded, NOT verified)")
    .description(
      "Show a token's header, claims, expiry and scope, decoded but NOT verified: anyone can " +
        "write any claims into a token, so this shows what a token says, not whether to trust it. With --json: " +
        "{ header, claims, expiresIn } where expiresIn is seconds, negative once expired (null " +
        "without exp).",
    )
    .argument("[jwt]", "The token, or - for stdin (default: --token or MESH_TOKEN)")
    .action((jwt: string | undefined, _o, cmd: Command) =>
      run(tokenInspect(globalsOf(cmd), jwt, io)),
    );

  for (const cmd of [program, ...leaves(program)]) {
    for (const option of globalOptions()) cmd.addOption(option);
    if (OFFLINE.has(path(cmd))) continue;
    for (const option of natsOptions()) cmd.addOption(option);
  }
  for (const cmd of [program, ...program.commands, ...leaves(program)]) {
    cmd.showHelpAfterError(usageHint(cmd));
  }
  return program;
}
