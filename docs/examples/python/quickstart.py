"""The Python quick start (docs/python.md); run by the demo and by pytest."""

import asyncio

import polyracer


def main() -> None:
    with polyracer.Context(timeout=1.0, memory_limit=64 << 20) as ctx:
        print(ctx.eval("[1, 2, 3].map((x) => x * 2)"))  # [2, 4, 6]

        # Python functions callable from JS; they run on this thread.
        ctx.expose("greet", lambda name: f"hello, {name}")
        print(ctx.eval("greet('polyracer')"))  # hello, polyracer

        # JS functions callable from Python.
        add = ctx.eval("(a, b) => a + b")
        print(add(2, 40))  # 42

        # Errors are Python exceptions with the JS stack.
        try:
            ctx.eval("null.x", filename="oops.js")
        except polyracer.JSError as e:
            print(e.name, "-", e.message)

        # Runaway code is stopped; the context stays usable.
        try:
            ctx.eval("while (true) {}", timeout=0.05)
        except TimeoutError:
            print("timed out, still usable:", ctx.eval("'yes'"))

        # Promises: await them from asyncio.
        async def later() -> str:
            return await ctx.eval_async(
                "new Promise((r) => setTimeout(() => r('awaited'), 10))"
            )

        print(asyncio.run(later()))


if __name__ == "__main__":
    main()
