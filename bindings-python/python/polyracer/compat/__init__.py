"""Drop-in compatibility layers for users of other JS-embedding libraries."""
