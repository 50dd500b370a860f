'use strict'
// The docs example (docs/examples/node/quickstart.js) runs and prints what
// docs/node.md says it prints.
const test = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const example =
  process.env.POLYRACER_EXAMPLE || path.join(__dirname, '..', '..', 'docs', 'examples', 'node', 'quickstart.js')

test('docs/examples/node/quickstart.js', () => {
  // Make `require('polyracer')` resolve to the package under test.
  const pkgDir = path.dirname(require.resolve('polyracer/package.json'))
  const modules = fs.mkdtempSync(path.join(os.tmpdir(), 'polyracer-docs-'))
  fs.symlinkSync(pkgDir, path.join(modules, 'polyracer'), 'dir')
  const out = execFileSync(process.execPath, [example], {
    encoding: 'utf8',
    env: { ...process.env, NODE_PATH: modules },
    timeout: 30000,
  })
  assert.deepEqual(out.trim().split('\n'), [
    '[ 2, 4, 6 ]',
    'hello, polyracer',
    '42',
    'TypeError - Cannot read properties of null (reading \'x\')',
    'timed out, still usable: yes',
    'awaited',
    'the sandbox runs V8 ' + require('polyracer').V8_VERSION,
  ])
})
