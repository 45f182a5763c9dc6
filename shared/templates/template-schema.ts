/**
 * `email.templates` — per-tenant Handlebars templates on a compacted topic, keyed
 * `<tenant> NUL <name>` (`tenantScopedKey`: tenants may contain `/`, never NUL). Records written
 * before that scheme are keyed `<tenant>/<name>`; they are still read (see `legacyTemplateKey`)
 * and rewritten under the new key by the next PUT of that template. The value is
 * the whole template: subject, html and/or text, and the partials only it uses. `version`
 * counts the writes of one key and, with `updatedAt`, tells caches a template changed.
 */
import { Type, type Static } from '@sinclair/typebox';
import { contract } from '../contracts/codec.js';
import { parseTenantScopedKey, tenantScopedKey } from '../tenant-keys.js';

export const STORED_TEMPLATE_VERSION = 1;

/** Template names: safe as a path segment, a URL segment and a key part. */
export const TEMPLATE_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$';
/** Partial names: what `{{> name}}` can reference without quoting. */
export const PARTIAL_NAME_PATTERN = '^[A-Za-z0-9_-]{1,64}$';
const templateNameRe = new RegExp(TEMPLATE_NAME_PATTERN);
const partialNameRe = new RegExp(PARTIAL_NAME_PATTERN);

export const TEMPLATE_LIMITS = {
  subjectChars: 2000,
  bodyChars: 512 * 1024,
  partials: 50,
  partialChars: 256 * 1024,
  /**
   * Largest encoded record: Kafka's default `message.max.bytes` is 1 MB, and a record the
   * broker refuses must fail the PUT, not later.
   */
  recordBytes: 900 * 1024,
} as const;

/** What a tenant sends to store a template (`PUT /v1/templates/:name`). */
export const TemplateInputSchema = Type.Object(
  {
    /** Handlebars source of the subject line; rendered without HTML escaping, CR/LF folded. */
    subject: Type.String({ minLength: 1, maxLength: TEMPLATE_LIMITS.subjectChars }),
    /** Handlebars source of the HTML part; `{{x}}` is HTML-escaped. */
    html: Type.Optional(Type.String({ minLength: 1, maxLength: TEMPLATE_LIMITS.bodyChars })),
    /** Handlebars source of the plain-text part; rendered without HTML escaping. */
    text: Type.Optional(Type.String({ minLength: 1, maxLength: TEMPLATE_LIMITS.bodyChars })),
    /** Partials only this template uses, by name (`{{> footer}}`). */
    partials: Type.Optional(
      Type.Record(Type.String({ pattern: PARTIAL_NAME_PATTERN }), Type.String({ maxLength: TEMPLATE_LIMITS.partialChars }), {
        maxProperties: TEMPLATE_LIMITS.partials,
        // Without this TypeBox only checks keys that match the pattern and lets others through.
        additionalProperties: false,
      }),
    ),
  },
  { additionalProperties: false },
);
export type TemplateInput = Static<typeof TemplateInputSchema>;

export const StoredTemplateSchema = Type.Object(
  {
    schemaVersion: Type.Literal(STORED_TEMPLATE_VERSION),
    name: Type.String({ pattern: TEMPLATE_NAME_PATTERN }),
    subject: TemplateInputSchema.properties.subject,
    html: TemplateInputSchema.properties.html,
    text: TemplateInputSchema.properties.text,
    partials: TemplateInputSchema.properties.partials,
    updatedAt: Type.String({ format: 'date-time' }),
    /** 1 for the first write of this tenant/name, then +1 per write. */
    version: Type.Integer({ minimum: 1 }),
  },
  { additionalProperties: false },
);
export type StoredTemplate = Static<typeof StoredTemplateSchema>;
export const StoredTemplateContract = contract('StoredTemplate', STORED_TEMPLATE_VERSION, StoredTemplateSchema);

export function isTemplateName(name: string): boolean {
  return templateNameRe.test(name);
}

export function isPartialName(name: string): boolean {
  return partialNameRe.test(name);
}

/** The `email.templates` key of a tenant's template; throws TypeError for an invalid name. */
export function templateKey(tenant: string, name: string): string {
  if (!isTemplateName(name)) throw new TypeError(`not a template name: ${JSON.stringify(name)}`);
  return tenantScopedKey(tenant, name);
}

/**
 * The key the same template had before keys were tenant-scoped (`<tenant>/<name>`). Only ever
 * built for a valid name (no `/`), so splitting at the last `/` gives back the one pair that
 * wrote it: PUT always checked names, and `acme` asking for `eu/welcome` is refused before
 * any key is built.
 */
export function legacyTemplateKey(tenant: string, name: string): string {
  if (!isTemplateName(name)) throw new TypeError(`not a template name: ${JSON.stringify(name)}`);
  return `${tenant}/${name}`;
}

/** The tenant and name of a key of either scheme, or undefined when it is neither. */
export function parseTemplateKey(key: string): { tenant: string; name: string; legacy: boolean } | undefined {
  const scoped = parseTenantScopedKey(key);
  if (scoped) return isTemplateName(scoped.part) ? { tenant: scoped.tenant, name: scoped.part, legacy: false } : undefined;
  const i = key.lastIndexOf('/');
  if (i <= 0 || !isTemplateName(key.slice(i + 1))) return undefined;
  return { tenant: key.slice(0, i), name: key.slice(i + 1), legacy: true };
}
