"""The search: proposers (rules, LLM), operators, optuna tuning, and the run loop."""
