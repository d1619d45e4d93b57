#!/usr/bin/env node
// Extracts the request/response grammars of the APIs this package implements from the protocol guide's message
// section as Kafka renders it (Protocol.toHtml of kafka-clients, dumped by KafkaDocs.java), into
// kafka-4.4.0-grammar.txt. generate-api-files.js then puts each version's grammar on top of its file.
// Usage: java ... KafkaDocs protocol > /tmp/protocol.html && node scripts/extract-grammar.js /tmp/protocol.html
const fs = require('node:fs');
const path = require('node:path');
const { APIS } = require('./apis');

const html = fs.readFileSync(process.argv[2], 'utf8');
const unescape = (text) =>
  text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&');
const pattern =
  /<pre>((\w+) (Request|Response) \(Version: (\d+)\) =>.*?)<\/pre><p><b>(?:Request|Response) header version:<\/b> (\d)<\/p>/gs;
const blocks = [];
for (const [, text, name, kind, version, headerVersion] of html.matchAll(pattern)) {
  const api = APIS.find((a) => a.name === name);
  if (!api || Number(version) < api.min || Number(version) > api.max) continue;
  blocks.push(`${unescape(text).trimEnd()}\n  (${kind.toLowerCase()} header version: ${headerVersion})\n`);
}
const target = path.join(__dirname, 'kafka-4.4.0-grammar.txt');
fs.writeFileSync(target, blocks.join('\n'));
console.log(`wrote ${blocks.length} grammars to ${target}`);
