"""`make eval`: how well retrieval finds the page that answers, and how well the answer cites it.

Question sets live in eval/questions/ (a question, the pages that answer it, or none for a
question the corpus cannot answer). `tutorial.json` is the set we tune on;
`tutorial-heldout.json` is held aside and never tuned on, and reported apart. The run
ingests its corpus into a site of its own (.data/eval) and writes eval/results/latest.md.
"""
