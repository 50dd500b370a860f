// Ruby binding: see bindings-ruby/README.md
