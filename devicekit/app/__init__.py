"""The apps' side, in Python: what a generated app knows about its model and does with it.

``facts``: the manifest reduced to what the app code needs (ModelFacts). ``port``: a line-by-line port of the
apps' platform-free code (crop, preprocess, decode). ``golden``: the golden check every app carries and
``bench --golden`` judges. Core (no torch, no tensorflow): mobile_templates, the web app and bench build on it.
"""
