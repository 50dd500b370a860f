#!/usr/bin/env node
// napi-rs platform names, from bindings-node/package.json's napi.targets.
//   node ci/napi-platform.js
//       prints this machine's platform (linux-x64-gnu, darwin-arm64, ...).
//   node ci/napi-platform.js --optional-dependencies PACKAGE_JSON
//       writes optionalDependencies into PACKAGE_JSON: one per target,
//       @polyracer/binding-<platform> at the package's version, as
//       `napi prepublish` does at publish time.
'use strict'
const fs = require('node:fs')
const path = require('node:path')

// Rust target triple -> napi-rs platform suffix (the folder names under
// bindings-node/npm and the loader's file names).
const PLATFORMS = {
  'x86_64-unknown-linux-gnu': 'linux-x64-gnu',
  'aarch64-unknown-linux-gnu': 'linux-arm64-gnu',
  'x86_64-apple-darwin': 'darwin-x64',
  'aarch64-apple-darwin': 'darwin-arm64',
  'x86_64-pc-windows-msvc': 'win32-x64-msvc',
}

function here() {
  if (process.platform === 'linux') {
    const glibc = process.report.getReport().header.glibcVersionRuntime
    return `linux-${process.arch}-${glibc ? 'gnu' : 'musl'}`
  }
  if (process.platform === 'win32') return `win32-${process.arch}-msvc`
  return `${process.platform}-${process.arch}`
}

const args = process.argv.slice(2)
if (args[0] === '--optional-dependencies') {
  const file = args[1]
  const manifest = JSON.parse(fs.readFileSync(file, 'utf8'))
  const source = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'bindings-node', 'package.json'), 'utf8'))
  const deps = {}
  for (const target of source.napi.targets) {
    const platform = PLATFORMS[target]
    if (!platform) throw new Error(`napi.targets has ${target}, which ci/napi-platform.js does not know`)
    deps[`${source.napi.packageName}-${platform}`] = manifest.version
  }
  manifest.optionalDependencies = deps
  fs.writeFileSync(file, JSON.stringify(manifest, null, 2) + '\n')
} else {
  console.log(here())
}
