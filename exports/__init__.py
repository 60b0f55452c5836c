"""Export writers: one module per format behind one interface (see ``exports.base``).

Exporters take storage models and write bytes; they never import Strawberry or the web layer.
"""
