/**
 * What an SMTP failure means: a category (unknown-user, mailbox-full, …) and a class (whose
 * problem it is: recipient, infrastructure, content) from the rule table in
 * `bounce-rules.yaml` — reply-text rules first, then the enhanced status code, then the basic
 * code. The table is read, validated and compiled once, on first use (a bad rule throws a
 * ConfigError naming its line); classifying is pure and allocation-light, since it runs
 * for every failed delivery and for every Diagnostic-Code of an asynchronous bounce.
 */
import fs from 'node:fs';
import { LineCounter, isMap, isSeq, parseDocument, type Node } from 'yaml';
import { ConfigError } from '../config-loader.js';

export const BOUNCE_CATEGORIES = [
  'unknown-user',
  'mailbox-full',
  'mailbox-disabled',
  'spam',
  'policy',
  'blocklisted-ip',
  'authentication',
  'throttled',
  'greylisted',
  'dns',
  'tls',
  'message-too-large',
  'other',
] as const;
export type BounceCategory = (typeof BOUNCE_CATEGORIES)[number];

export const BOUNCE_CLASSES = ['recipient', 'infrastructure', 'content'] as const;
/** recipient: the address is bad (only these suppress); infrastructure: our sending (IP, auth, rate, network); content: this message. */
export type BounceClass = (typeof BOUNCE_CLASSES)[number];

export interface BounceInput {
  /** The basic SMTP code (550). Taken from the start of `text` when absent. */
  code?: number;
  /** The enhanced status code (5.1.1). Taken from `text` when absent. */
  enhanced?: string;
  /** The reply text, or a DSN's Diagnostic-Code (`smtp; 550 5.1.1 <a@b>: user unknown`). */
  text?: string;
}

export interface BounceVerdict {
  category: BounceCategory;
  bounceClass: BounceClass;
}

/** One compiled rule; `line` is where it is in the table. */
interface Rule {
  line: number;
  verdict: BounceVerdict;
  pattern?: RegExp;
  /** Enhanced codes without their class digit (`1.1`), or with it (`5.7.26`). */
  enhanced?: Set<string>;
  codes?: Set<string>;
}

/** A classifier's shape, for code that takes one as a dependency (tests pass stand-ins). */
export type ClassifyBounce = (input: BounceInput) => BounceVerdict;

export interface BounceRuleTable {
  text: Rule[];
  enhanced: Rule[];
  code: Rule[];
}

const RULE_KEYS: Record<keyof BounceRuleTable, Set<string>> = {
  text: new Set(['category', 'class', 'pattern', 'enhanced', 'code', 'provider']),
  enhanced: new Set(['category', 'class', 'enhanced', 'code', 'provider']),
  code: new Set(['category', 'class', 'code', 'provider']),
};

const ENHANCED_PATTERN = /^([245x])\.(\d{1,3})\.(\d{1,3})$/;
const CODE_PATTERN = /^([245])(\d\d|xx)$/;

/** Parses and validates a rule table (the YAML text); throws a ConfigError listing every bad rule by line. */
export function loadBounceRules(yamlText: string, source = 'bounce-rules.yaml'): BounceRuleTable {
  const lines = new LineCounter();
  const doc = parseDocument(yamlText, { lineCounter: lines });
  const lineOf = (n: Node | null | undefined) => (n?.range ? lines.linePos(n.range[0]).line : 0);
  const problems: string[] = doc.errors.map((e) => `${source}:${e.linePos?.[0].line ?? 0}: ${e.message}`);
  const root = doc.contents;
  const table: BounceRuleTable = { text: [], enhanced: [], code: [] };
  if (problems.length > 0 || !isMap(root)) throw new ConfigError([...problems, ...(isMap(root) ? [] : [`${source}: expected a mapping with categories, text, enhanced and code`])]);
  const classes = new Map<string, BounceClass>();
  const cats = root.get('categories', true);
  if (!isMap(cats)) problems.push(`${source}:${lineOf(root)}: categories: expected a mapping of category → class`);
  else {
    for (const pair of cats.items) {
      const name = String((pair.key as { value?: unknown })?.value ?? pair.key);
      const cls = String((pair.value as { value?: unknown })?.value ?? '');
      const line = lineOf(pair.key as Node);
      if (!(BOUNCE_CATEGORIES as readonly string[]).includes(name)) problems.push(`${source}:${line}: unknown category ${JSON.stringify(name)}`);
      else if (!(BOUNCE_CLASSES as readonly string[]).includes(cls)) problems.push(`${source}:${line}: category ${name}: class must be one of ${BOUNCE_CLASSES.join(', ')}`);
      else classes.set(name, cls as BounceClass);
    }
    for (const c of BOUNCE_CATEGORIES) if (!classes.has(c)) problems.push(`${source}:${lineOf(cats)}: categories: ${c} has no class`);
  }
  for (const section of ['text', 'enhanced', 'code'] as const) {
    const seq = root.get(section, true);
    if (!isSeq(seq)) {
      problems.push(`${source}: ${section}: expected a list of rules`);
      continue;
    }
    for (const item of seq.items) {
      const line = lineOf(item as Node);
      const bad = (why: string) => problems.push(`${source}:${line}: ${section} rule: ${why}`);
      if (!isMap(item)) {
        bad('expected a mapping');
        continue;
      }
      const rule = compileRule(section, (item as { toJSON(): Record<string, unknown> }).toJSON(), classes, line, bad);
      if (rule) table[section].push(rule);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return table;
}

function compileRule(section: keyof BounceRuleTable, raw: Record<string, unknown>, classes: Map<string, BounceClass>, line: number, bad: (why: string) => void): Rule | undefined {
  const before = { n: 0 };
  const fail = (why: string) => {
    before.n++;
    bad(why);
  };
  for (const k of Object.keys(raw)) if (!RULE_KEYS[section].has(k)) fail(`unknown key ${JSON.stringify(k)}`);
  const category = String(raw.category ?? '');
  if (!(BOUNCE_CATEGORIES as readonly string[]).includes(category)) fail(`category must be one of ${BOUNCE_CATEGORIES.join(', ')} (got ${JSON.stringify(raw.category)})`);
  const cls = raw.class === undefined ? classes.get(category) : String(raw.class);
  if (raw.class !== undefined && !(BOUNCE_CLASSES as readonly string[]).includes(cls ?? '')) fail(`class must be one of ${BOUNCE_CLASSES.join(', ')}`);
  const rule: Rule = { line, verdict: { category: category as BounceCategory, bounceClass: (cls ?? 'infrastructure') as BounceClass } };
  if (section === 'text') {
    if (typeof raw.pattern !== 'string' || raw.pattern === '') fail('pattern: expected a regular expression');
    else {
      try {
        rule.pattern = new RegExp(raw.pattern, 'i');
      } catch (err) {
        fail(`pattern: ${(err as Error).message}`);
      }
    }
  }
  if (raw.enhanced !== undefined || section === 'enhanced') {
    const list = [raw.enhanced].flat().map(String);
    const badOnes = list.filter((e) => !ENHANCED_PATTERN.test(e));
    if (raw.enhanced === undefined || badOnes.length > 0) fail(`enhanced: expected codes such as 5.7.26 or x.1.1 (got ${JSON.stringify(raw.enhanced)})`);
    else rule.enhanced = new Set(list.map((e) => (e.startsWith('x.') ? e.slice(2) : e)));
  }
  if (raw.code !== undefined || section === 'code') {
    const list = [raw.code].flat().map(String);
    if (raw.code === undefined || list.some((c) => !CODE_PATTERN.test(c))) fail(`code: expected codes such as 550 or 5xx (got ${JSON.stringify(raw.code)})`);
    else rule.codes = new Set(list);
  }
  return before.n === 0 ? rule : undefined;
}

const ENHANCED_IN_TEXT = /\b([245])\.(\d{1,3})\.(\d{1,3})\b/;
const CODE_IN_TEXT = /^\s*(?:[a-z-]+;\s*)?([245]\d\d)\b/i;

function enhancedMatches(rule: Rule, full: string, tail: string): boolean {
  return rule.enhanced!.has(full) || rule.enhanced!.has(tail);
}

function codeMatches(rule: Rule, code: number | undefined): boolean {
  if (code === undefined) return false;
  return rule.codes!.has(String(code)) || rule.codes!.has(`${Math.floor(code / 100)}xx`);
}

const OTHER: BounceVerdict = { category: 'other', bounceClass: 'infrastructure' };

/** A classifier over `table` (tests and tools; the shipped table is `classifyBounce`). */
export function bounceClassifier(table: BounceRuleTable): (input: BounceInput) => BounceVerdict {
  return (input) => {
    const text = input.text ?? '';
    const code = input.code ?? (text ? Number(CODE_IN_TEXT.exec(text)?.[1]) || undefined : undefined);
    let enhanced = input.enhanced;
    if (!enhanced && text) {
      const m = ENHANCED_IN_TEXT.exec(text);
      if (m) enhanced = `${m[1]}.${m[2]}.${m[3]}`;
    }
    const tail = enhanced ? enhanced.slice(enhanced.indexOf('.') + 1) : '';
    if (text) {
      for (const r of table.text) {
        if (r.codes && !codeMatches(r, code)) continue;
        if (r.enhanced && (!enhanced || !enhancedMatches(r, enhanced, tail))) continue;
        if (r.pattern!.test(text)) return r.verdict;
      }
    }
    if (enhanced) {
      for (const r of table.enhanced) {
        if (r.codes && !codeMatches(r, code)) continue;
        if (enhancedMatches(r, enhanced, tail)) return r.verdict;
      }
    }
    for (const r of table.code) if (codeMatches(r, code)) return r.verdict;
    return OTHER;
  };
}

/** The shipped table's path (next to this module). */
export const BOUNCE_RULES_FILE = new URL('./bounce-rules.yaml', import.meta.url);

let shipped: ((input: BounceInput) => BounceVerdict) | undefined;

/**
 * The shipped table, read and compiled on first use (importing this module reads no file, so
 * every command loads without it), then kept. Throws a ConfigError when the file is bad — which
 * the table-driven tests of every build rule out.
 */
export function shippedBounceClassifier(): (input: BounceInput) => BounceVerdict {
  shipped ??= bounceClassifier(loadBounceRules(fs.readFileSync(BOUNCE_RULES_FILE, 'utf8'), 'shared/bounces/bounce-rules.yaml'));
  return shipped;
}

/**
 * The category and class of a failure, from the shipped rule table. Pure. With only `text` (a
 * DSN's Diagnostic-Code), the basic and enhanced codes are read from the text.
 */
export function classifyBounce(input: BounceInput): BounceVerdict {
  return (shipped ?? shippedBounceClassifier())(input);
}

/** True when the failure is about the recipient's address (what feeds suppressions and bounce-rate pauses). */
export function isRecipientClass(input: BounceInput): boolean {
  return classifyBounce(input).bounceClass === 'recipient';
}
