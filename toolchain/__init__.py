"""musl cross-toolchain bootstrapper: sources/ (recipes, verified downloads, safe unpacking,
patches), build/ (the build context, the stage registry and its stages), checks/ (ELF facts
and gates), and the doit metadata (tasks.py) and command line (__main__.py) on top."""
