// The APIs and versions this package implements; shared by the code generators.
exports.APIS = [
  {
    name: 'ApiVersions',
    dir: 'api-versions',
    min: 0,
    max: 3,
    note: [
      "Kafka's rendering drops the array brackets of tagged fields: supported_features and finalized_features are",
      'compact arrays (ApiVersionsResponse.json: []SupportedFeatureKey, []FinalizedFeatureKey).',
    ],
  },
  { name: 'Metadata', dir: 'metadata', min: 1, max: 12 },
  { name: 'FindCoordinator', dir: 'find-coordinator', min: 0, max: 4 },
  { name: 'ListOffsets', dir: 'list-offsets', min: 1, max: 7 },
  { name: 'Fetch', dir: 'fetch', min: 4, max: 12 },
  { name: 'OffsetFetch', dir: 'offset-fetch', min: 1, max: 7 },
  { name: 'OffsetCommit', dir: 'offset-commit', min: 2, max: 8 },
  { name: 'SaslHandshake', dir: 'sasl-handshake', min: 1, max: 1 },
  { name: 'SaslAuthenticate', dir: 'sasl-authenticate', min: 0, max: 2 },
];
