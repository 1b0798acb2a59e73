"""llmtheory: the tested library behind *Advances in LLM Theory, Executed*.

One module per paper (named by its slug) plus shared parts: ``params`` (scale tiers and validation),
``claims`` (the claims ledger), ``plotting`` (one figure style), ``display`` (``show_source``),
``seeding`` (deterministic random streams), ``chapters`` (the table of contents) and ``cli``.
Importing it has no side effects and downloads nothing.
"""

__version__ = "0.1.0"
