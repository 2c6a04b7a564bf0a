"""The course's evaluation as a library: task kinds, model formats, runners and the CLI.

No Django here. The layout:

* ``kinds/``: one module per task kind (input spec, output check, metrics, ranked score, pass
  rule, the facts pages show), found through the registry in ``kinds/__init__``;
* ``formats/``: one module per model format (its static check and its loader), detection by
  content, and the checks every upload passes (``formats.upload``);
* ``runners/``: running a model in another process (``drive``: the frame protocol's parent
  side; ``process``: a plain child for a student's machine); ``sandbox/``: the runner of
  grading hosts; ``child``: the model process's side; ``protocol``: the frames between them;
* ``evaluate``: check, run and score one file; ``__main__``: the command line.

Modules the web process imports (``grader.kinds``, ``grader.formats`` and
``grader.formats.upload``, ``grader.errors``, ``grader.evaluate``) never import torch; only the
model process and the worker's picture drawing do.
"""

__version__ = "1.0.0"
