// @ts-check
import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['**/dist/**', '**/node_modules/**', '**/coverage/**', '.nx/**', '.cache/**', '.stack/**'],
  },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        {
          selector:
            'CallExpression[callee.object.name=/^(it|test|describe)$/][callee.property.name=/^(only|skip|todo)$/]',
          message: 'No focused or skipped tests: make them real or remove them.',
        },
      ],
    },
  },
  // Rules that need the type checker: a promise nobody awaits or catches is an unhandled rejection waiting to
  // happen, and a promise where a plain callback is expected (an event listener, a timer) loses its errors.
  {
    files: ['**/*.ts'],
    ignores: ['**/*.d.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  // The package graph, by tags in each package.json's "nx" field: the wire protocol and the strategies are
  // leaves, the consumer builds on them, backends and exporters build on the consumer only, the app on anything.
  // The private test kit (type:test) may use every published package; no published package's src may use it.
  {
    files: ['packages/*/src/**/*.ts', 'apps/*/src/**/*.ts'],
    plugins: { '@nx': nx },
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          // The test kit's store-cluster cases drive the cluster stack through the repository's own scripts/cluster.js.
          allow: ['../../../scripts/cluster'],
          depConstraints: [
            { sourceTag: 'type:leaf', onlyDependOnLibsWithTags: [] },
            { sourceTag: 'type:core', onlyDependOnLibsWithTags: ['type:leaf'] },
            { sourceTag: 'type:backend', onlyDependOnLibsWithTags: ['type:core'] },
            { sourceTag: 'type:exporter', onlyDependOnLibsWithTags: ['type:core'] },
            { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:leaf', 'type:core', 'type:backend'] },
            { sourceTag: 'type:test', onlyDependOnLibsWithTags: ['type:leaf', 'type:core', 'type:backend'] },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: {
        require: 'readonly',
        module: 'writable',
        __dirname: 'readonly',
        process: 'readonly',
        console: 'readonly',
      },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
