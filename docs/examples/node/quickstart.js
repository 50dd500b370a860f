// The Node.js quick start (docs/node.md); run by the demo and by the test suite.
const { Context, JSError, TimeoutError, V8_VERSION } = require('polyracer')

async function main() {
  const ctx = new Context({ timeout: 1000, memoryLimit: 64 << 20 })
  try {
    console.log(ctx.evalSync('[1, 2, 3].map((x) => x * 2)')) // [ 2, 4, 6 ]

    // Node functions callable from the sandbox; they run on the main thread.
    ctx.expose('greet', (name) => `hello, ${name}`)
    console.log(ctx.evalSync("greet('polyracer')")) // hello, polyracer

    // Sandbox functions callable from Node.
    const add = ctx.evalSync('(a, b) => a + b')
    console.log(add(2, 40)) // 42

    // Errors carry the sandbox's name, message and stack.
    try {
      ctx.evalSync('null.x', { filename: 'oops.js' })
    } catch (e) {
      if (!(e instanceof JSError)) throw e
      console.log(e.name, '-', e.message)
    }

    // Runaway code is stopped; the context stays usable.
    try {
      ctx.evalSync('while (true) {}', { timeout: 50 })
    } catch (e) {
      if (!(e instanceof TimeoutError)) throw e
      console.log('timed out, still usable:', ctx.evalSync("'yes'"))
    }

    // Async: runs off the main thread and awaits sandbox promises.
    console.log(await ctx.eval("new Promise((r) => setTimeout(() => r('awaited'), 10))"))
    console.log('the sandbox runs V8', V8_VERSION)
  } finally {
    ctx.dispose()
  }
}

main()
