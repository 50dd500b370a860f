// Public API of `polyracer` (the native layer's generated types are ../index.d.ts).
import type { NativeContext, NativeScript, NativeSnapshot, EvalOptions as NativeEvalOptions, HeapStats } from '../index'

export type { HeapStats }

export interface ContextOptions {
  /** Default timeout for every call, in milliseconds (0 to 31536000000, a year). */
  timeout?: number
  /**
   * Memory limit in bytes (V8 heap plus ArrayBuffer memory), a whole number
   * from 4 MiB to 1 TiB, rounded down to whole MiB. Reaching it throws
   * `OutOfMemoryError`; buffer allocations past it throw a RangeError inside
   * the sandbox. Values out of range throw `InvalidArgumentError`.
   */
  memoryLimit?: number
  /** Start from this snapshot's heap. */
  snapshot?: Snapshot
}

export interface EvalOptions extends NativeEvalOptions {
  /** Script name used in stack traces. */
  filename?: string
  /** Milliseconds; overrides the context's default. */
  timeout?: number
  /** Return objects and arrays as `JSObject` / `JSArray` handles instead of copies. */
  asHandle?: boolean
}

export interface SyncEvalOptions extends EvalOptions {
  /**
   * Return every ArrayBuffer, typed array and DataView in the result as a
   * `Uint8Array` over the sandbox's own memory instead of a copy: writes show
   * on both sides, and the memory lives as long as the `Uint8Array` (after
   * the context is disposed too). Resizable buffers are still copied.
   */
  shareBuffers?: boolean
}

export interface AsyncEvalOptions extends EvalOptions {
  /** Aborting withdraws the await and rejects with the signal's reason. */
  signal?: AbortSignal
}

export interface CompileOptions {
  filename?: string
  /** A code cache from an earlier `Script.cachedData` for the same source. */
  cachedData?: Uint8Array
  produceCache?: boolean
}

export interface ExposeOptions {
  /** The function returns a promise: the sandbox gets a promise. Default: true for async functions. */
  async?: boolean
}

export interface ModuleOptions {
  filename?: string
  /** Returns the source of the module `specifier` imported from `referrer`. */
  resolve?: (specifier: string, referrer: string) => string
  /** Milliseconds (covers top-level await). */
  timeout?: number
}

/** A JavaScript sandbox: its own V8 isolate (heap, limits), beside Node's. */
export declare class Context extends NativeContext {
  constructor(options?: ContextOptions)
  evalSync(code: string, options?: SyncEvalOptions): any
  /**
   * Runs now, on this thread; settles with the value, or the awaited value
   * of a promise result (the context is free while it is pending).
   */
  eval(code: string, options?: AsyncEvalOptions): Promise<any>
  callSync(target: string | JSFunction, ...args: unknown[]): any
  call(target: string | JSFunction, ...args: unknown[]): Promise<any>
  setGlobal(name: string, value: unknown): void
  expose(name: string, fn: (...args: any[]) => unknown, options?: ExposeOptions): void
  compile(source: string, options?: CompileOptions): Script
  evalModule(source: string, options?: ModuleOptions): Record<string, any>
  terminate(): void
  heapStats(): HeapStats
  lowMemoryNotification(): void
  writeHeapSnapshot(path: string): void
  dispose(): void
  get disposed(): boolean
  [Symbol.dispose](): void
}

/** A compiled script; run it many times. */
export declare class Script extends NativeScript {
  [Symbol.dispose](): void
}

/** A V8 startup snapshot. */
export declare class Snapshot extends NativeSnapshot {
  static create(source: string): Snapshot
  static load(data: Uint8Array): Snapshot
  warmup(source: string): Snapshot
}

/** A sandbox function; calling it runs synchronously. */
export interface JSFunction {
  (...args: unknown[]): any
  /** Calls off the main thread and awaits a promise result. */
  callAsync(...args: unknown[]): Promise<any>
}
export declare const JSFunction: {
  prototype: JSFunction
}

export declare class JSObject {
  protected constructor()
  get(key: string | number): any
  set(key: string | number, value: unknown): void
  delete(key: string | number): boolean
  keys(): string[]
  copy(): any
}

export declare class JSArray extends JSObject {
  readonly length: number
}

/** A sandbox promise: `await` it (or `wait()` for it synchronously). */
export declare class JSPromise implements PromiseLike<any> {
  private constructor()
  then<A = any, B = never>(
    onFulfilled?: ((value: any) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: any) => B | PromiseLike<B>) | null,
  ): Promise<A | B>
  catch<B = never>(onRejected?: ((reason: any) => B | PromiseLike<B>) | null): Promise<any>
  finally(onFinally?: (() => void) | null): Promise<any>
  wait(timeout?: number): any
  readonly state: 'pending' | 'fulfilled' | 'rejected'
}

export declare class JSSymbol {
  private constructor()
  readonly description: string
}

export declare class PolyracerError extends Error {}
/** A SyntaxError at compile time; `name` is the sandbox's (`SyntaxError`). */
/** One frame of a sandbox stack (`frames` of `JSError`/`ParseError`, innermost first). */
export interface StackFrame {
  /** The function's name; absent for top-level code and anonymous functions. */
  function?: string
  file?: string
  line: number
  column: number
}
export declare class ParseError extends PolyracerError {
  value: unknown
  frames: StackFrame[]
  filename?: string
  line?: number
  column?: number
}
/** An uncaught sandbox exception: `name`, `message`, `stack` are the sandbox's; `cause` is the Node exception that started it. */
export declare class JSError extends PolyracerError {
  value: unknown
  /** The sandbox stack as data. */
  frames: StackFrame[]
  filename?: string
  line?: number
  column?: number
}
export declare class TimeoutError extends PolyracerError {}
export declare class TerminatedError extends PolyracerError {}
export declare class OutOfMemoryError extends PolyracerError {}
export declare class ConversionError extends TypeError {}
export declare class DisposedError extends PolyracerError {}
export declare class InvalidArgumentError extends TypeError {}

/** The sandbox's V8 version (not Node's). */
export declare const V8_VERSION: string
/** V8's code-cache version tag; mix it into cache keys (reading it starts the engine). */
export declare const CACHED_DATA_VERSION_TAG: number
/** Engine flags; only before the first context is created. */
export declare function configure(options: { flags?: string[]; singleThreaded?: boolean }): void
