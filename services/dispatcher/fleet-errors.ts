/** Errors of a fleet that never reached an SMTP server's verdict; both are retriable. */
import { TransientError } from '../../shared/errors.js';

/** The host could not be reached: no connection is open and opening one failed. */
export class HostUnavailableError extends TransientError {
  constructor(
    readonly host: string,
    cause: unknown,
  ) {
    super('HOST_UNAVAILABLE', `cannot connect to ${host}: ${(cause as Error)?.message ?? cause}`, { cause });
  }
}

/** No connection became free for this priority within the acquire timeout. */
export class FleetBusyError extends TransientError {
  constructor(host: string, ms: number) {
    super('FLEET_BUSY', `no connection to ${host} became free within ${ms} ms`);
  }
}
