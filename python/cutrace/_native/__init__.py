"""The package's ``libcutrace.so`` and its cffi declarations, in ``cutrace/``
below: maturin builds and places them (see ``pyproject.toml``)."""
