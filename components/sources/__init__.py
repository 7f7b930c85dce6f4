"""Where a stack's settings come from: a stack file (offline tools) or Pulumi config (the program).

Both produce one ``StackInput`` through one decoding path, so ``tizi check`` and
``pulumi preview`` see the same settings and report the same problems.
"""
