/**
 * Options shared by everything that handles mail coming back: signed return paths (VERP),
 * unsubscribe links and the reference header that ties a bounce, a complaint or a provider's
 * notification to the message and recipient it is about (`shared/feedback/feedback-token.ts`).
 */
import { Type } from '@sinclair/typebox';
import { section, str } from './schema-helpers.js';

/** One signing key of feedback tokens. The first key of the list signs; every key verifies (rotation). */
export const FeedbackKeyEntry = Type.Object(
  {
    id: Type.Integer({ minimum: 0, maximum: 15, description: 'Key id carried in every token (0–15).' }),
    secret: Type.String({ minLength: 32, description: 'At least 32 characters of random text (never logged).' }),
  },
  { additionalProperties: false },
);

export const FeedbackSection = section(
  {
    keys: Type.Array(FeedbackKeyEntry, {
      default: [],
      description:
        'Keys that sign return paths, unsubscribe links and X-Postline-Ref, as JSON: [{"id":2,"secret":"…"},{"id":1,"secret":"…"}]. The first signs, all verify: add a new key first, keep the old one until mail signed with it stops coming back (about a month), then drop it. Empty: no return paths, unsubscribe links or feedback are produced or accepted. npm start generates one.',
    }),
    keysFile: str('', 'A JSON file holding more keys in the same form as keys (e.g. a mounted Kubernetes Secret); its keys verify after those of keys. Empty for none.'),
    returnPathDomain: str(
      '',
      'Domain of signed return paths (VERP): the envelope sender of every message becomes b-<token>@<this domain>, whose MX must point at the inbound service (postline inbound). Empty: the envelope sender stays the From address and asynchronous bounces are not read.',
    ),
    unsubscribeUrl: str(
      '',
      'Public base URL of the one-click unsubscribe endpoint (the send API serves POST/GET /u/<token>), e.g. https://mail.example.com. Empty: no List-Unsubscribe URL is added.',
    ),
  },
  'Feedback (return paths, unsubscribe links)',
);
