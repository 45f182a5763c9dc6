/**
 * One schema per contract gives both the runtime validator and the TypeScript type. Records
 * on Kafka are JSON; decoding validates, and a failure names every bad field. Anyone may
 * produce to an input topic, so decoding also bounds the value's nesting and size before
 * anything walks it: a record nested 100,000 deep is a ValidationError (dead-lettered by the
 * stage), never a stack overflow.
 */
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { Static, TSchema } from '@sinclair/typebox';
import { ValidationError } from '../errors.js';
import { TEMPLATE_DATA_LIMITS, jsonShapeProblem, type JsonLimits } from '../json-limits.js';
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

/** Any record: template data (the deepest part of any contract, three levels down) within its limits, plus room. */
export const RECORD_JSON_LIMITS: JsonLimits = { maxDepth: TEMPLATE_DATA_LIMITS.maxDepth + 8, maxValues: 2 * TEMPLATE_DATA_LIMITS.maxValues };

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
      const shape = jsonShapeProblem(parsed, RECORD_JSON_LIMITS);
      if (shape) throw new ValidationError([{ path: '', message: `${name} record ${shape}` }]);
      const issues = check(parsed);
      if (issues.length > 0) throw new ValidationError(issues);
      return parsed as Static<T>;
    },
    encode(value) {
      return Buffer.from(JSON.stringify(value));
    },
  };
}
