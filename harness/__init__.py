"""Tools that drive the system from outside (bench, chaos, fuzz). Not part of the product:
nothing in `schemas`, `runtime`, `reasoning`, `streams`, `workers` or `autoglm` imports
it, and it is left out of the wheel and the image."""
