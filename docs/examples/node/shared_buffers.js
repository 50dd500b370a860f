// Large binary data without a copy (docs/node.md); run by the test suite.
const { Context } = require('polyracer')

const ctx = new Context()
ctx.evalSync('globalThis.pixels = new Uint8Array(64 << 20)') // a 64 MiB image
const view = ctx.evalSync('pixels', { shareBuffers: true }) // no copy
view[0] = 255 // writes go straight into the sandbox's buffer
console.log(ctx.evalSync('pixels[0]')) // 255
ctx.dispose()
// The memory stays valid while the view lives, after the context too.
console.log(view.length, view[0]) // 67108864 255
