"""Promotion through git: copy the image digests running in one environment into another's definition.

`sources` reads what runs in the source environment, `rewrite` edits the target's environments/ file without
touching anything but the digests, `flow` checks, commits on a promotion branch and opens the pull request.
"""


class PromotionRefused(Exception):
    """A one-line reason the promotion was not made; nothing was changed."""

    exit_code = 1


class NothingToPromote(PromotionRefused):
    """The target already runs exactly what the source runs."""

    exit_code = 3
