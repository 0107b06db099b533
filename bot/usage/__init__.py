"""Usage, costs and quotas (issue 11). Import the submodules directly; this package
imports nothing so that ``bot.config`` can use ``bot.usage.budget`` without a cycle."""
