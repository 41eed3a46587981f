"""Ouroboros: interview -> seed -> execute -> evaluate -> evolve.

A task is never executed blindly: it starts from a specification (the seed),
is checked against that seed's acceptance criteria, and a failed run evolves
a narrower next-generation seed until it passes or the generations run out.

- :mod:`.seed`: the immutable, versioned spec and its store
- :mod:`.llm`: JSON conversations with the model (one corrective retry)
- :mod:`.interview`: clarity scores, questions, assumptions
- :mod:`.evaluate`: mechanical checks first, then an LLM judge with a rubric
- :mod:`.protocol`: routing and the loop itself (service ``ouroboros``)
"""
