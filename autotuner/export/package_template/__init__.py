"""Files copied into every exported package (templates: never imported from here)."""
