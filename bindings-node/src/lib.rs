// Node binding: see bindings-node/README.md
