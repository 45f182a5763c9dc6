/**
 * One schema per contract gives both the runtime validator and the TypeScript type. Records
 * on Kafka are JSON; decoding validates, and a failure names every bad field.
 */
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { Static, TSchema } from '@sinclair/typebox';
import { ValidationError } from '../errors.js';
import './formats.js';

export interface Contract<T extends TSchema> {
  name: string;
  version: number;
  schema: T;
  /** Parses and validates a record value; throws ValidationError naming each bad field. */
  decode(value: Buffer | string | null): Static<T>;
  /** Validates an object; returns the issues (empty when valid). */
  check(value: unknown): Array<{ path: string; message: string }>;
  encode(value: Static<T>): Buffer;
}

const MAX_ISSUES = 20;

export function contract<T extends TSchema>(name: string, version: number, schema: T): Contract<T> {
  const compiled: TypeCheck<T> = TypeCompiler.Compile(schema);
  const check = (value: unknown): Array<{ path: string; message: string }> => {
    if (compiled.Check(value)) return [];
    const issues: Array<{ path: string; message: string }> = [];
    for (const e of compiled.Errors(value)) {
      issues.push({ path: e.path.split('/').filter(Boolean).join('.'), message: e.message });
      if (issues.length >= MAX_ISSUES) break;
    }
    return issues;
  };
  return {
    name,
    version,
    schema,
    check,
    decode(value) {
      if (value === null) throw new ValidationError([{ path: '', message: `${name} record has no value` }]);
      let parsed: unknown;
      try {
        parsed = JSON.parse(typeof value === 'string' ? value : value.toString('utf8'));
      } catch (err) {
        throw new ValidationError([{ path: '', message: `${name} record is not JSON: ${(err as Error).message}` }]);
      }
      const issues = check(parsed);
      if (issues.length > 0) throw new ValidationError(issues);
      return parsed as Static<T>;
    },
    encode(value) {
      return Buffer.from(JSON.stringify(value));
    },
  };
}
