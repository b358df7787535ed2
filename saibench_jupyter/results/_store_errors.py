"""The errors and warnings of a results store, apart from :class:`Store`, so its helpers need not import it."""


class StoreError(Exception):
    """A results store that cannot be opened or read: a bad path, a newer schema, a damaged file, no descriptor left."""


class StoreWarning(UserWarning):
    """Something a reader of a store should know that does not stop the reading (a copy lacking results)."""
