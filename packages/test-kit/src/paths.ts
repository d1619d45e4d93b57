// Where the repository's own files are, from this package's src/ or dist/ (both sit at packages/test-kit/<dir>/).
import * as path from 'node:path';

/** The repository's root directory. */
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

/** `scripts/stack`, which starts and stops the local servers. */
export const STACK_SCRIPT = path.join(REPO_ROOT, 'scripts', 'stack');
