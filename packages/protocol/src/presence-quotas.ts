import { withDefaults } from "./defaults.js";
import { checkInt } from "./integers.js";

/**
 * Bounds on what one reader of presence keeps: the registry's instance table and the SDK's
 * presence view apply the same ones, so neither grows with what a flood announces or writes.
 */
export interface PresenceQuotas {
  /**
   * Most instances of one service kept; a new one beyond it is refused (and counted).
   * @default 1000
   */
  maxInstancesPerService?: number;
  /**
   * Most instances kept over all services.
   * @default 10000
   */
  maxRecords?: number;
  /**
   * Largest stored record, in bytes: the JSON written into `<P>_presence`, its signature
   * included. A record of 256 methods of 32 characters and 32 metadata entries of 128 fits.
   * @default 16384
   */
  maxRecordBytes?: number;
}

/** Defaults of {@link PresenceQuotas}. */
export const DEFAULT_PRESENCE_QUOTAS = {
  maxInstancesPerService: 1000,
  maxRecords: 10_000,
  maxRecordBytes: 16 * 1024,
} as const satisfies Required<PresenceQuotas>;

/** Quotas can be lowered at will, and raised up to these. */
const MAX = { instances: 1_000_000, recordBytes: 64 * 1024 } as const;

/**
 * Resolves quotas into a new object with every default applied; throws `TypeError` naming
 * `where` (`"quotas"`, `"presence"`) on a value that is not a whole number in range.
 */
export function resolvePresenceQuotas(
  quotas: PresenceQuotas | undefined,
  where: string,
): Readonly<Required<PresenceQuotas>> {
  if (quotas !== undefined && (quotas === null || typeof quotas !== "object")) {
    throw new TypeError(`${where} must be an object`);
  }
  const q = withDefaults(DEFAULT_PRESENCE_QUOTAS, quotas ?? {});
  return {
    maxInstancesPerService: checkInt(
      q.maxInstancesPerService,
      `${where}.maxInstancesPerService`,
      1,
      MAX.instances,
    ),
    maxRecords: checkInt(q.maxRecords, `${where}.maxRecords`, 1, MAX.instances),
    maxRecordBytes: checkInt(q.maxRecordBytes, `${where}.maxRecordBytes`, 512, MAX.recordBytes),
  };
}

/** A refusal for going over a quota: `MeshError.data.reason` of the readers' errors. */
export const QUOTA_EXCEEDED = "over-quota";
