"""`make eval`: how well retrieval finds the page that answers, and how well the answer cites it.

Question sets live in eval/questions/ (a question, the pages that answer it, or none for a
question the corpus cannot answer), over two corpora from python3.11-doc: the tutorial (the
demo) and the library reference. `tutorial.json` and `library.json` are tuned on;
`*-heldout.json` are held aside, never tuned on, and reported apart. The run ingests each
corpus into a site of its own (.data/eval), once, and writes eval/results/latest.md;
`python -m eval tutorial tutorial-heldout` runs only the sets named. With every set, it
also asks the labelled pairs of eval/pairs/ (a paraphrase or a near miss of the first
question) as the semantic layer would, draws that layer's curve, chooses its setting on
the tuned pairs and shows that setting on every set, pair by pair and with all of a set's
questions in one scope (eval/semantic.py).
"""
