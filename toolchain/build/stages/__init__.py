"""One module per component; each declares its stages (a `Stage` each) at its end."""
