// Swift binding: see bindings-swift/README.md
