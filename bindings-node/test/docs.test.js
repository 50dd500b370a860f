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

function run(file) {
  // Make `require('polyracer')` resolve to the package under test.
  const pkgDir = path.dirname(require.resolve('polyracer/package.json'))
  const modules = fs.mkdtempSync(path.join(os.tmpdir(), 'polyracer-docs-'))
  fs.symlinkSync(pkgDir, path.join(modules, 'polyracer'), 'dir')
  return execFileSync(process.execPath, [file], {
    encoding: 'utf8',
    env: { ...process.env, NODE_PATH: modules },
    timeout: 30000,
  })
}

test('docs/examples/node/async_example.js, shown in docs/async.md', () => {
  const file = path.join(path.dirname(example), 'async_example.js')
  assert.equal(run(file).trim(), 'A2!')
  const page = fs.readFileSync(path.join(path.dirname(example), '..', '..', 'async.md'), 'utf8')
  assert.ok(page.includes(fs.readFileSync(file, 'utf8')), 'docs/async.md shows the tested example')
})

test('docs/examples/node/quickstart.js', () => {
  const out = run(example)
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

test('docs/examples/node/shared_buffers.js, shown in docs/node.md', () => {
  const file = path.join(path.dirname(example), 'shared_buffers.js')
  assert.deepEqual(run(file).trim().split('\n'), ['255', '67108864 255'])
  const page = fs.readFileSync(path.join(path.dirname(example), '..', '..', 'node.md'), 'utf8')
  assert.ok(page.includes(fs.readFileSync(file, 'utf8')), 'docs/node.md shows the tested example')
})
