import asyncio

import polyracer


async def main() -> None:
    with polyracer.Context(timeout=5) as ctx:

        async def lookup(key: str) -> str:
            await asyncio.sleep(0.01)  # host I/O; the context is free meanwhile
            return key.upper() + str(ctx.eval("1 + 1"))

        ctx.expose("lookup", lookup)
        print(await ctx.eval_async("(async () => (await lookup('a')) + '!')()"))  # A2!


asyncio.run(main())
