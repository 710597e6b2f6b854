"""amirun's shared runtime: the execution model, the errors, and the work of each step.

Shipped once, as a Lambda layer, and imported by every function in `functions/`.
"""
