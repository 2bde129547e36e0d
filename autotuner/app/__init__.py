"""The application floor's run assembly: run configuration, a tuning run from it, its reports.

It sits on top with the CLI, deploy and export: it may import the search (``evolution``), the
archive's facade and the ground floor; nothing below imports it.
"""
