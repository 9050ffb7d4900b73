"""The command-line programs of ``tools/`` whose processes detectron2's ``launch`` must be able to import (a function
it starts in a spawned process has to live in an importable module)."""
