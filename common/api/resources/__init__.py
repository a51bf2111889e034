"""One module per resource; each declares its routes (ROUTES) next to their handlers."""
