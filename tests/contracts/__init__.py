"""Contract suites: one test class per interface, run against every implementation."""
