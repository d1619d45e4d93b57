/** Placeholder until this package's issue lands. */
export const version = '0.1.0';
