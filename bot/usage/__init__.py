"""Usage, costs and quotas (issue 11): pricing, the per-call meter, quotas, reports, and
``operators.Operators``, the one object the core holds."""
