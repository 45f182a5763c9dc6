/**
 * A small declarative form of Kafka's JSON message specs: each request and response is a list
 * of fields with the versions they exist in, and one generic codec reads and writes any version.
 * Writing the messages as data keeps "which field exists in which version" in one readable place
 * instead of scattered across hand-written encoders.
 */
import { ProtocolError, Reader, Writer } from './primitives.js';

export type Primitive = 'int8' | 'int16' | 'int32' | 'int64' | 'bool' | 'string' | 'nstring' | 'bytes' | 'nbytes';

/** Inclusive version range; `max` is Infinity for "n+". */
export interface Versions {
  min: number;
  max: number;
}

export interface Field {
  name: string;
  versions: Versions;
  type: Primitive | Field[];
  /** The field is an array of `type`. */
  array: boolean;
  /** Versions in which the array may be null. */
  nullable?: Versions;
  /** Value written when the object lacks the field (defaults: 0, false, '', null, []). */
  fallback?: unknown;
}

export type Schema = Field[];

export function versions(spec: string): Versions {
  const plus = /^(\d+)\+$/.exec(spec);
  if (plus) return { min: Number(plus[1]), max: Infinity };
  const range = /^(\d+)-(\d+)$/.exec(spec);
  if (range) return { min: Number(range[1]), max: Number(range[2]) };
  if (/^\d+$/.test(spec)) return { min: Number(spec), max: Number(spec) };
  throw new Error(`bad version spec ${spec}`);
}

const has = (v: Versions, version: number): boolean => version >= v.min && version <= v.max;

interface FieldOptions {
  nullable?: string;
  fallback?: unknown;
}

/** A scalar field: `field('throttleTimeMs', 'int32', '1+')`. */
export function field(name: string, type: Primitive, spec = '0+', opts: FieldOptions = {}): Field {
  return { name, type, versions: versions(spec), array: false, fallback: opts.fallback };
}

/** An array of scalars or of structs: `array('partitions', [...fields])`. */
export function array(name: string, type: Primitive | Field[], spec = '0+', opts: FieldOptions = {}): Field {
  return {
    name,
    type,
    versions: versions(spec),
    array: true,
    nullable: opts.nullable ? versions(opts.nullable) : undefined,
    fallback: opts.fallback,
  };
}

/* eslint-disable @typescript-eslint/no-explicit-any */
export type Message = Record<string, any>;

function readPrimitive(r: Reader, type: Primitive): unknown {
  switch (type) {
    case 'int8':
      return r.int8();
    case 'int16':
      return r.int16();
    case 'int32':
      return r.int32();
    case 'int64':
      return r.int64();
    case 'bool':
      return r.bool();
    case 'string':
      return r.string();
    case 'nstring':
      return r.nstring();
    case 'bytes':
      return r.bytes();
    case 'nbytes':
      return r.nbytes();
  }
}

export function decode(schema: Schema, version: number, r: Reader): Message {
  const out: Message = {};
  for (const f of schema) {
    if (!has(f.versions, version)) continue;
    if (!f.array) {
      out[f.name] = typeof f.type === 'string' ? readPrimitive(r, f.type) : decode(f.type, version, r);
      continue;
    }
    const len = r.arrayLength();
    if (len < 0) {
      if (!f.nullable || !has(f.nullable, version)) throw new ProtocolError(`${f.name} may not be null`);
      out[f.name] = null;
      continue;
    }
    const items = new Array(len);
    for (let i = 0; i < len; i++) {
      items[i] = typeof f.type === 'string' ? readPrimitive(r, f.type) : decode(f.type, version, r);
    }
    out[f.name] = items;
  }
  return out;
}

function writePrimitive(w: Writer, type: Primitive, v: any): void {
  switch (type) {
    case 'int8':
      w.int8(v ?? 0);
      return;
    case 'int16':
      w.int16(v ?? 0);
      return;
    case 'int32':
      w.int32(v ?? 0);
      return;
    case 'int64':
      w.int64(v ?? 0);
      return;
    case 'bool':
      w.bool(Boolean(v));
      return;
    case 'string':
      w.nstring(v ?? '');
      return;
    case 'nstring':
      w.nstring(v ?? null);
      return;
    case 'bytes':
      w.nbytes(v ?? Buffer.alloc(0));
      return;
    case 'nbytes':
      w.nbytes(v ?? null);
      return;
  }
}

export function encode(schema: Schema, version: number, msg: Message, w: Writer): void {
  for (const f of schema) {
    if (!has(f.versions, version)) continue;
    const v = msg[f.name] === undefined ? f.fallback : msg[f.name];
    if (!f.array) {
      if (typeof f.type === 'string') writePrimitive(w, f.type, v);
      else encode(f.type, version, v ?? {}, w);
      continue;
    }
    if (v === null && f.nullable && has(f.nullable, version)) {
      w.int32(-1);
      continue;
    }
    const items: any[] = v ?? [];
    w.int32(items.length);
    for (const item of items) {
      if (typeof f.type === 'string') writePrimitive(w, f.type, item);
      else encode(f.type, version, item, w);
    }
  }
}
