import type { Subjects } from "@natsmesh/protocol";

/** Most subjects kept; past it the cache starts over (callers name few methods, a bug many). */
const MAX_SUBJECTS = 1024;

/**
 * The balanced-call subjects `P.svc.<service>.<method>` of one mesh, built and checked once per
 * name pair. A subject made per call is a fresh concatenated string that the publisher must
 * flatten again before writing it, and its names are checked again each time; a cached one is
 * flat and already checked.
 */
export class QueueSubjects {
  readonly #subjects: Subjects;
  readonly #byService = new Map<string, Map<string, string>>();
  #size = 0;

  constructor(subjects: Subjects) {
    this.#subjects = subjects;
  }

  /** `P.svc.<service>.<method>`; throws `TypeError` on an invalid name, as `Subjects` does. */
  of(service: string, method: string): string {
    let methods = this.#byService.get(service);
    const cached = methods?.get(method);
    if (cached !== undefined) return cached;
    // Checks both names before anything is kept.
    const subject = this.#subjects.service(service, method);
    if (this.#size >= MAX_SUBJECTS) {
      this.#byService.clear();
      this.#size = 0;
      methods = undefined;
    }
    if (methods === undefined) {
      methods = new Map();
      this.#byService.set(service, methods);
    }
    methods.set(method, subject);
    this.#size++;
    return subject;
  }
}
