import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Type } from '@sinclair/typebox';
import { ConfigError, envName, loadConfig, describeOptions } from './config-loader.js';
import { PostlineConfigSchema } from './config.js';

const Schema = Type.Object({
  kafka: Type.Object(
    {
      brokers: Type.Array(Type.String(), { default: ['127.0.0.1:9092'], minItems: 1 }),
      partitions: Type.Integer({ default: 6, minimum: 1 }),
      createTopics: Type.Boolean({ default: true }),
    },
    { additionalProperties: false },
  ),
  log: Type.Object({ level: Type.Union([Type.Literal('info'), Type.Literal('debug')], { default: 'info' }) }, { additionalProperties: false }),
});

test('env var names derive from the option path', () => {
  assert.equal(envName(['dispatcher', 'idleTimeoutMs']), 'POSTLINE_DISPATCHER_IDLE_TIMEOUT_MS');
  assert.equal(envName(['kafka', 'brokers']), 'POSTLINE_KAFKA_BROKERS');
});

test('defaults apply when nothing is set', () => {
  assert.deepEqual(loadConfig(Schema, { env: {} }), { kafka: { brokers: ['127.0.0.1:9092'], partitions: 6, createTopics: true }, log: { level: 'info' } });
});

test('env values are parsed by type: lists, integers, booleans', () => {
  const c = loadConfig(Schema, { env: { POSTLINE_KAFKA_BROKERS: 'a:1, b:2', POSTLINE_KAFKA_PARTITIONS: '12', POSTLINE_KAFKA_CREATE_TOPICS: 'false' } });
  assert.deepEqual(c.kafka, { brokers: ['a:1', 'b:2'], partitions: 12, createTopics: false });
});

test('a config file is read and env overrides it', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cfg-'));
  const file = path.join(dir, 'c.json');
  fs.writeFileSync(file, JSON.stringify({ kafka: { partitions: 3, brokers: ['file:1'] } }));
  const c = loadConfig(Schema, { env: { POSTLINE_CONFIG: file, POSTLINE_KAFKA_PARTITIONS: '4' } });
  assert.deepEqual(c.kafka.brokers, ['file:1']);
  assert.equal(c.kafka.partitions, 4);
  fs.rmSync(dir, { recursive: true });
});

test('every bad key is listed at once, with its variable name', () => {
  try {
    loadConfig(Schema, { env: { POSTLINE_KAFKA_PARTITIONS: '0', POSTLINE_KAFKA_CREATE_TOPICS: 'maybe', POSTLINE_LOG_LEVEL: 'loud', POSTLINE_KAFKA_BROKRS: 'x' } });
    assert.fail('expected a ConfigError');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    const text = err.problems.join('\n');
    assert.match(text, /POSTLINE_KAFKA_PARTITIONS \(kafka\.partitions\)/);
    assert.match(text, /POSTLINE_KAFKA_CREATE_TOPICS .*true or false/);
    assert.match(text, /POSTLINE_LOG_LEVEL .*must be one of info, debug/);
    assert.match(text, /POSTLINE_KAFKA_BROKRS: unknown option/);
    assert.equal(err.problems.length, 4);
  }
});

test('unknown keys in a config file are rejected', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cfg-'));
  const file = path.join(dir, 'c.json');
  fs.writeFileSync(file, JSON.stringify({ kafka: { partitons: 3 } }));
  assert.throws(() => loadConfig(Schema, { env: { POSTLINE_CONFIG: file } }), ConfigError);
  fs.rmSync(dir, { recursive: true });
});

test('every option of the real schema has a default and a description', () => {
  for (const o of describeOptions(PostlineConfigSchema)) {
    assert.ok(o.description.length > 0, `${o.path} has no description`);
    assert.notEqual(o.default, undefined, `${o.path} has no default`);
  }
});
