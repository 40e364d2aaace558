"""The one exception regcore raises for bad input."""


class SpecError(ValueError):
    """An invalid penalty spec, coefficient, convention, selection or serialized form.

    Every message names the offending field (as a dotted path where the value sits inside a
    serialized spec, e.g. ``penalties[0].term.coef``) and the value that was rejected. It derives
    from :class:`ValueError` so ``except ValueError`` also catches it.
    """
