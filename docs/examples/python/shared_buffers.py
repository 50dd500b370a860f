"""Large binary data without a copy (docs/python.md); run by pytest."""

import polyracer


def main() -> None:
    with polyracer.Context() as ctx:
        ctx.eval("globalThis.pixels = new Uint8Array(64 << 20)")  # a 64 MiB image
        view = ctx.eval("pixels", share_buffers=True)  # a memoryview, no copy
        view[0] = 255  # writes go straight into the JS buffer
        print(ctx.eval("pixels[0]"))  # 255
    # The memory stays valid while the view lives, after the context too.
    print(len(view), view[0])  # 67108864 255


if __name__ == "__main__":
    main()
