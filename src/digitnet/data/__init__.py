"""Data: IDX files in, arrays of ``(784, m)`` pixels in [0, 1] and integer labels out.

``idx`` reads and writes the IDX format with validation; ``sources`` is the table of known files
and their digests (data only); ``datasets`` loads a dataset by name or folder.
"""
