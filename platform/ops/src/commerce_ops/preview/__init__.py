"""Pull-request previews: compare two rendered resource graphs and report what a deploy would do.

`changes` is the pure diff engine over graph dicts (as written by `commerce_ops.render`), `report` turns a
plan into terminal text or a markdown PR comment, `baseline` renders an environment at a git ref in a temporary
worktree so the base side runs the base ref's own code.
"""
