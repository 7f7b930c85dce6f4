"""tizi: deploy one inference service to the targets this stack's configuration names.

Everything happens in ``components.program.run``: config → spec → placement → components.
"""

from components.program import run

run()
