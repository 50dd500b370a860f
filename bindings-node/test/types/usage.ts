// Type-checked with `tsc --noEmit` (ci/test-node.sh): the shipped declarations
// describe the API the tests exercise.
import { Context, JSError, JSFunction, JSPromise, Snapshot, TimeoutError, V8_VERSION, CACHED_DATA_VERSION_TAG } from 'polyracer'

async function main(): Promise<void> {
  const ctx = new Context({ timeout: 1000, memoryLimit: 64 << 20 })
  const n: number = ctx.evalSync('1 + 1', { filename: 'a.js', timeout: 10 })
  const shared: Uint8Array = ctx.evalSync('new Uint8Array(8)', { shareBuffers: true })
  ctx.expose('greet', (name: string) => `hi ${name}`)
  ctx.expose('later', async (x: number) => x * 2, { async: true })
  const add: JSFunction = ctx.evalSync('(a, b) => a + b')
  const sum: number = add(1, 2) + ctx.callSync(add, 3, 4) + (await ctx.call('Math.max', 1, 2))
  const p: JSPromise = ctx.evalSync('Promise.resolve(1)')
  const v: number = await p
  const aborted: Promise<unknown> = ctx.eval('new Promise(() => {})', { signal: AbortSignal.timeout(10), timeout: 50 })
  const s = ctx.compile('1', { filename: 'c.js', produceCache: true })
  const cache: Buffer | undefined = s.cachedData
  const snap = Snapshot.load(Snapshot.create('globalThis.x = 1').dump())
  const c2 = new Context({ snapshot: snap })
  const ns = ctx.evalModule('export const a = 1', { filename: '/m.mjs', resolve: (spec, ref) => `${spec}${ref}` })
  const used: number = ctx.heapStats().usedHeapSize
  try {
    ctx.evalSync('throw 1')
  } catch (e) {
    if (e instanceof JSError) console.log(e.name, e.message, e.stack, e.value, e.cause, e.frames.map((f) => `${f.function ?? "<js>"}@${f.file}:${f.line}:${f.column}`))
    if (e instanceof TimeoutError) console.log('timeout')
  }
  console.log(n, sum, v, cache, ns.a, used, V8_VERSION, CACHED_DATA_VERSION_TAG)
  c2.dispose()
  ctx[Symbol.dispose]()
}

void main()
