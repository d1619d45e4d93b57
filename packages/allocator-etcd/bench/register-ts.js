// Lets plain `node` load this package's TypeScript sources (transpile only, no type check), for the benchmark
// scripts and the child processes of the tests: `node -r ./bench/register-ts.js bench/lease-loss.ts`.
const fs = require('node:fs');
const ts = require('typescript');

require.extensions['.ts'] = (module, filename) => {
  const { outputText } = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    fileName: filename,
  });
  module._compile(outputText, filename);
};
