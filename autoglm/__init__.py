"""The `autoglm` command line: parse arguments, call the layers below, print. Nothing
another layer needs lives here (see `docs/design.md`, "Layers")."""
