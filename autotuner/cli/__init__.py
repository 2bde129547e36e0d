"""The command line. Only this package prints; the library logs."""
