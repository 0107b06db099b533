"""Copywriting: styles, structured variants, constraints, rendering and refinement.

Entry points for the core: ``styles.resolve_style`` / ``style_instructions`` /
``interpret_style_args`` / ``style_list_markdown``, ``flow.write_variants``,
``refine.refine_message``.
"""
