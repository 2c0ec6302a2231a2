/**
 * What Alpha Vantage means by the texts it answers with, instead of data, in
 * `Note`, `Information` or `Error Message` (always with HTTP 200). Collected
 * from the provider's answers as its users have reported them; the examples
 * are what the local stand-in server says, and each has a test.
 *
 * - throttled: too many calls too fast (per minute, per second, a burst):
 *   wait a little and call again, no attempt spent.
 * - daily-quota: the key's calls for the day are spent: no call until the
 *   provider's daily reset.
 * - premium: the endpoint needs a premium plan: a configuration problem,
 *   not solved by calling again.
 * - key-refused: no usable key (missing, or the public demo key). The API
 *   does not check keys otherwise: a mistyped key behaves like a free one.
 * - invalid-call: the request itself is wrong.
 */
export type ProviderMeaning = 'throttled' | 'daily-quota' | 'premium' | 'key-refused' | 'invalid-call';

export interface ProviderText {
  meaning: ProviderMeaning;
  field: 'Note' | 'Information' | 'Error Message';
  /** Matched against the text; the first entry that matches decides. */
  pattern: RegExp;
  /** Wait before calling again, for throttles that say their window. */
  retryInMs?: number;
  example: string;
}

const THANKS = 'Thank you for using Alpha Vantage!';
const PREMIUM_URL = 'https://www.alphavantage.co/premium/';

export const PROVIDER_TEXTS: readonly ProviderText[] = [
  {
    meaning: 'premium',
    field: 'Information',
    pattern: /this is a premium endpoint/i,
    example: `${THANKS} This is a premium endpoint. You may subscribe to any of the premium plans at ${PREMIUM_URL} to instantly unlock all premium endpoints`,
  },
  {
    meaning: 'throttled',
    field: 'Information',
    pattern: /burst pattern detected/i,
    retryInMs: 1_000,
    example: `${THANKS} Burst pattern detected. Please consider spreading out your API requests more sparingly (no more than 30 requests per second) or subscribing to a higher premium plan at ${PREMIUM_URL}`,
  },
  {
    // Names the daily limit too, but is the answer to calls made too fast.
    meaning: 'throttled',
    field: 'Information',
    pattern: /more sparingly \(1 request per second\)/i,
    retryInMs: 1_000,
    example: `${THANKS} Please consider spreading out your free API requests more sparingly (1 request per second). You may subscribe to any of the premium plans at ${PREMIUM_URL} to lift the free key rate limit (25 requests per day), raise the per-second burst limit, and instantly unlock all premium endpoints`,
  },
  {
    meaning: 'throttled',
    field: 'Information',
    pattern: /spreading out your free API requests more sparingly/i,
    retryInMs: 1_000,
    example: `${THANKS} Please consider spreading out your free API requests more sparingly. You may subscribe to any of the premium plans at ${PREMIUM_URL} to lift the free key rate limit (25 requests per day) and instantly unlock all premium endpoints`,
  },
  {
    meaning: 'throttled',
    field: 'Note',
    pattern: /API call frequency is \d+ calls per minute/i,
    example: `${THANKS} Our standard API call frequency is 5 calls per minute and 500 calls per day. Please visit ${PREMIUM_URL} if you would like to target a higher API call frequency.`,
  },
  {
    meaning: 'throttled',
    field: 'Information',
    pattern: /higher API call volume/i,
    example: `${THANKS} Please kindly contact support@alphavantage.co if you would like to have a higher API call volume.`,
  },
  {
    meaning: 'daily-quota',
    field: 'Information',
    pattern: /rate limit is \d+ requests per day/i,
    example: `${THANKS} Our standard API rate limit is 25 requests per day. Please subscribe to any of the premium plans at ${PREMIUM_URL} to instantly remove all daily rate limits.`,
  },
  {
    meaning: 'key-refused',
    field: 'Information',
    pattern: /demo\W+API key is for demo purposes/i,
    example:
      'The **demo** API key is for demo purposes only. Please claim your free API key at (https://www.alphavantage.co/support/#api-key) to explore our full API offerings. It takes fewer than 20 seconds.',
  },
  {
    meaning: 'key-refused',
    field: 'Error Message',
    pattern: /apikey is invalid or missing/i,
    example:
      'the parameter apikey is invalid or missing. Please claim your free API key on (https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds.',
  },
  {
    meaning: 'invalid-call',
    field: 'Error Message',
    pattern: /./,
    example: 'Invalid API call. Please retry or visit the documentation (https://www.alphavantage.co/documentation/) for OVERVIEW.',
  },
];

/** The meaning of a provider text, or null for one that matches nothing known. */
export function meaningOf(field: ProviderText['field'], text: string): ProviderText | null {
  // An Error Message is never a throttle; Note and Information texts have moved between the two fields over the years.
  const candidates = PROVIDER_TEXTS.filter((entry) => (field === 'Error Message') === (entry.field === 'Error Message'));
  return candidates.find((entry) => entry.pattern.test(text)) ?? null;
}
