"""Sources: the recipes, and getting their bytes verified into unpacked, patched trees."""
