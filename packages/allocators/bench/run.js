// Runs the TypeScript benchmark without a build step: .ts files are transpiled on require with the workspace's
// TypeScript (type checking is `npm run typecheck`, which covers bench/).
const fs = require('node:fs');
const path = require('node:path');
const ts = require('typescript');

require.extensions['.ts'] = (module, filename) => {
  const source = fs.readFileSync(filename, 'utf8');
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    fileName: filename,
  });
  module._compile(outputText, filename);
};

require(path.join(__dirname, 'allocators.bench.ts'));
