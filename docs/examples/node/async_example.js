const { Context } = require('polyracer')
const ctx = new Context({ timeout: 5000 })
ctx.expose('lookup', async (key) => {
  await new Promise((r) => setTimeout(r, 10)) // Node I/O; the context is free meanwhile
  return key.toUpperCase() + ctx.evalSync('1 + 1')
})
ctx.eval("(async () => (await lookup('a')) + '!')()").then((v) => {
  console.log(v) // A2!
  ctx.dispose()
})
