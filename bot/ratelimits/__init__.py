"""Platform rate limits as budgets, and where their calls are counted."""
