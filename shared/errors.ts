/**
 * Errors carry a stable `code`, whether retrying can help (`retriable`) and their `cause`.
 * Retry logic checks `instanceof PermanentError` or `retriable`, never message text.
 */
export class PostlineError extends Error {
  readonly code: string;
  readonly retriable: boolean;

  constructor(code: string, message: string, opts: { retriable?: boolean; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = opts.retriable ?? false;
  }
}

/** Retrying cannot help: bad input, unknown template, a 5xx from the receiving server. */
export class PermanentError extends PostlineError {
  constructor(code: string, message: string, opts: { cause?: unknown } = {}) {
    super(code, message, { ...opts, retriable: false });
  }
}

/** Worth retrying later: a 4xx reply, a timeout, a broken connection. */
export class TransientError extends PostlineError {
  constructor(code: string, message: string, opts: { cause?: unknown } = {}) {
    super(code, message, { ...opts, retriable: true });
  }
}

/** One or more fields failed validation; `issues` names each one. */
export class ValidationError extends PermanentError {
  constructor(readonly issues: Array<{ path: string; message: string }>) {
    super('VALIDATION_FAILED', issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; '));
  }
}
