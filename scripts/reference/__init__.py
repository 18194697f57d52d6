"""The reference pages of the docs site, each rendered from the source it describes (`make docs`)."""
