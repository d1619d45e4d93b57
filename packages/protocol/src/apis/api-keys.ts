/**
 * Kafka API keys of the APIs this package implements, under Kafka's own names. Named constants keep numbers out of
 * the code (and out of wrong comments).
 */
export const ApiKeys = {
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  SaslHandshake: 17,
  ApiVersions: 18,
  SaslAuthenticate: 36,
} as const;

/** The name of an API this package implements. */
export type ApiName = keyof typeof ApiKeys;

/** The key of an API this package implements. */
export type ApiKey = (typeof ApiKeys)[ApiName];
