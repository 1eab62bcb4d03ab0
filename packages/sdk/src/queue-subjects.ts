import type { Subjects } from "@natsmesh/protocol";

/** Most subjects kept; past it the cache starts over (callers name few methods, a bug many). */
const MAX_SUBJECTS = 1024;

/**
 * The balanced-call subjects `P.svc.<service>.<method>` of one mesh, built, checked and encoded
 * once per name pair. A subject made per call is a fresh string whose names are checked again and
 * which the publisher must encode into each request; a cached one is bytes, checked already,
 * copied into the request's frame as they are.
 */
export class QueueSubjects {
  readonly #subjects: Subjects;
  readonly #byService = new Map<string, Map<string, Buffer>>();
  #size = 0;

  constructor(subjects: Subjects) {
    this.#subjects = subjects;
  }

  /** `P.svc.<service>.<method>`; throws `TypeError` on an invalid name, as `Subjects` does. */
  /** The subject's ASCII bytes; throws `TypeError` for a name that is not valid. */
  of(service: string, method: string): Buffer {
    let methods = this.#byService.get(service);
    const cached = methods?.get(method);
    if (cached !== undefined) return cached;
    // Checks both names before anything is kept.
    const subject = Buffer.from(this.#subjects.service(service, method), "latin1");
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
