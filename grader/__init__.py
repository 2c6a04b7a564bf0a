"""The course's evaluation as a library: task kinds, model formats, runners and the CLI.

No Django here. Modules the web process imports (``grader.tasks``, ``grader.formats``,
``grader.checks``, ``grader.errors``) never import torch; only the model process does.
"""

__version__ = "1.0.0"
